//! Requests and choices: what `peerlb_list_choose` takes and gives, and how a choice ends
//! (`peerlb_choice_finish`).

use std::ffi::{c_char, c_void};
use std::time::Duration;

use peerlb::{Choice, Error, LoadReport, Outcome, Request};

use crate::boundary::guard;
use crate::error::{invalid, peerlb_status};
use crate::handle::{self, CallerOwned, Handle};

/// How a request to a chosen peer ended (one of the `PEERLB_OUTCOME_*` values; any other
/// value is `PEERLB_INVALID_ARGUMENT`).
#[allow(non_camel_case_types)]
pub type peerlb_outcome = u32;
/// The request succeeded.
pub const PEERLB_OUTCOME_OK: peerlb_outcome = 0;
/// The request failed in a way that counts against the peer.
pub const PEERLB_OUTCOME_FAILURE: peerlb_outcome = 1;
/// The peer refused on purpose (overload, shedding): no retry, no ejection.
pub const PEERLB_OUTCOME_DECLINED: peerlb_outcome = 2;
/// The caller gave up on the request.
pub const PEERLB_OUTCOME_CANCELLED: peerlb_outcome = 3;

/// `peerlb_request.timeout_ms` value meaning "no deadline" (any negative value does).
pub const PEERLB_NO_TIMEOUT: i64 = -1;

/// The parameters of one `peerlb_list_choose` (or `peerlb_retry_choose`).
///
/// Ownership: the caller's; read during the call only (a choose that waits keeps its own
/// copy of the shard key).
#[repr(C)]
pub struct peerlb_request {
    /// How long to wait for an available peer, in milliseconds; negative (e.g.
    /// `PEERLB_NO_TIMEOUT`) means no deadline (then a list with no available peer fails at
    /// once with `PEERLB_NO_DEADLINE`). 0 means "only if one is available now".
    pub timeout_ms: i64,
    /// Key for hash-based strategies (others ignore it); may be NULL when `shard_key_len`
    /// is 0.
    pub shard_key: *const u8,
    /// Length of `shard_key` in bytes; 0 means no shard key.
    pub shard_key_len: usize,
}

impl Handle for peerlb_request {
    type Target = peerlb_request;
    type Ownership = CallerOwned;
    const NAME: &'static str = "request";
}

/// A chosen peer: filled in by `peerlb_list_choose`, ended by `peerlb_choice_finish`.
///
/// The request counts as pending on the peer until the choice is finished. A choice is a
/// plain struct on the caller's side (choose does not allocate); do not copy it and finish
/// both copies. `peerlb_choice_finish` clears it, so finishing it a second time is
/// `PEERLB_ALREADY_FINISHED`, not a crash. A choice stays valid (and must still be
/// finished) after its list is stopped or freed.
///
/// Ownership: the caller's struct; the peer it names is kept alive by peerlb until the
/// choice is finished. Thread safety: a choice may be finished on any thread, once.
#[repr(C)]
pub struct peerlb_choice {
    /// The chosen peer's id: `peer_len` bytes, NOT NUL-terminated (print it with
    /// `"%.*s", (int)c.peer_len, c.peer`). Valid until the choice is finished.
    pub peer: *const c_char,
    /// Length of `peer` in bytes.
    pub peer_len: usize,
    /// Opaque; NULL once finished. Do not touch.
    pub token: *const c_void,
}

impl Handle for peerlb_choice {
    type Target = peerlb_choice;
    type Ownership = CallerOwned;
    const NAME: &'static str = "choice";
}

impl peerlb_choice {
    /// The C form of a choice; the id lives in the peer, which the token keeps alive until
    /// the choice is finished.
    #[inline(always)]
    pub(crate) fn from_choice(choice: Choice) -> peerlb_choice {
        let id = choice.peer().as_str();
        let (peer, peer_len) = (id.as_ptr().cast::<c_char>(), id.len());
        let token = choice.into_raw().cast::<c_void>();
        peerlb_choice {
            peer,
            peer_len,
            token,
        }
    }

    /// Fails with `already-finished` when the choice was finished (or never chosen).
    #[inline]
    pub(crate) fn check_live(&self) -> Result<(), Error> {
        if self.token.is_null() {
            return Err(finished());
        }
        Ok(())
    }

    /// Takes the live choice back, clearing the struct so it cannot be taken twice;
    /// `already-finished` when there is none.
    #[inline]
    pub(crate) fn take(&mut self) -> Result<Choice, Error> {
        self.check_live()?;
        let token = std::mem::replace(&mut self.token, std::ptr::null());
        self.peer = std::ptr::null();
        self.peer_len = 0;
        // SAFETY: a non-NULL token is only ever written by from_choice (the struct is
        // documented as opaque to the caller) and is cleared right above, so it is rebuilt
        // exactly once.
        Ok(unsafe { Choice::from_raw(token.cast::<()>()) })
    }
}

/// The error for a choice already finished. The struct no longer names its peer (finishing
/// cleared it, and the peer's memory may be gone), so the message cannot either.
#[cold]
#[inline(never)]
fn finished() -> Error {
    Error::AlreadyFinished(
        "the choice is already finished (finishing it cleared it), or it was never chosen".into(),
    )
}

/// The error for an outcome value C gave that is none of `PEERLB_OUTCOME_*`.
#[cold]
#[inline(never)]
fn unknown_outcome(value: peerlb_outcome) -> Error {
    invalid(format!(
        "unknown outcome {value}; expected PEERLB_OUTCOME_OK (0), _FAILURE (1), _DECLINED (2) or _CANCELLED (3)"
    ))
}

/// A latency in microseconds as the core takes it (negative = unknown).
#[inline]
pub(crate) fn latency(latency_us: i64) -> Option<Duration> {
    u64::try_from(latency_us).ok().map(Duration::from_micros)
}

/// A C outcome value as the core's; an unknown value is `invalid-argument`.
#[inline]
pub(crate) fn outcome(value: peerlb_outcome) -> Result<Outcome, Error> {
    match value {
        PEERLB_OUTCOME_OK => Ok(Outcome::Ok),
        PEERLB_OUTCOME_FAILURE => Ok(Outcome::Failure),
        PEERLB_OUTCOME_DECLINED => Ok(Outcome::Declined),
        PEERLB_OUTCOME_CANCELLED => Ok(Outcome::Cancelled),
        other => Err(unknown_outcome(other)),
    }
}

/// The shard key of a C request (NULL, or no key: `None`), borrowed.
///
/// # Safety
/// As [`request_from`].
#[inline]
pub(crate) unsafe fn shard_key_of<'a>(
    request: *const peerlb_request,
) -> Result<Option<&'a [u8]>, Error> {
    // SAFETY: forwarded contract.
    match unsafe { handle::borrow_optional(request) } {
        // SAFETY: forwarded contract.
        Some(r) if r.shard_key_len > 0 => {
            unsafe { handle::slice(r.shard_key, r.shard_key_len, "shard_key") }.map(Some)
        }
        _ => Ok(None),
    }
}

/// Reads a C request (NULL: no timeout, no shard key); the shard key is borrowed.
///
/// # Safety
/// `request` must be NULL or valid, its shard key readable for its length during `'a`.
#[inline]
pub(crate) unsafe fn request_from<'a>(
    request: *const peerlb_request,
) -> Result<Request<'a>, Error> {
    let mut req = Request::new();
    // SAFETY: forwarded contract.
    if let Some(r) = unsafe { handle::borrow_optional(request) } {
        if let Ok(ms) = u64::try_from(r.timeout_ms) {
            req = req.with_timeout(Duration::from_millis(ms));
        }
        if r.shard_key_len > 0 {
            // SAFETY: forwarded contract.
            let key = unsafe { handle::slice(r.shard_key, r.shard_key_len, "shard_key") }?;
            req = req.with_shard_key(key);
        }
    }
    Ok(req)
}

/// The chosen peer's id as `*len` bytes at `*id` (not NUL-terminated; valid until the
/// choice is finished). Same as reading `choice->peer` and `choice->peer_len`.
///
/// Ownership: `*id` points into peerlb's memory, kept alive by the live choice; do not
/// free it.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, `PEERLB_ALREADY_FINISHED` for a
/// finished choice.
///
/// # Safety
/// `choice` NULL or a choice from `peerlb_list_choose`; `id`, `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_choice_peer(
    choice: *const peerlb_choice,
    id: *mut *const c_char,
    len: *mut usize,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { handle::borrow(choice) }?;
        // SAFETY: forwarded contract.
        let (id, len) = unsafe { (handle::out(id, "id")?, handle::out(len, "len")?) };
        c.check_live()?;
        id.write(c.peer);
        len.write(c.peer_len);
        Ok(())
    })
}

/// Ends the request of a choice: the peer's pending count goes down and the outcome
/// (`PEERLB_OUTCOME_*`) and latency (microseconds; negative when unknown) are recorded.
/// Clears `*choice`, so finishing it again is `PEERLB_ALREADY_FINISHED` and changes
/// nothing. Safe after the list was stopped or freed.
///
/// Ownership: ends peerlb's hold on the peer named in `*choice`; the struct stays the
/// caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL choice or an unknown outcome (the choice
/// is then left as it was, still to be finished); `PEERLB_ALREADY_FINISHED` for a finished
/// (or never chosen, zeroed) choice.
///
/// # Safety
/// `choice` NULL, or a choice filled by `peerlb_list_choose` (or one already finished
/// through this same struct). Finishing a *copy* of a finished choice is undefined.
#[no_mangle]
pub unsafe extern "C" fn peerlb_choice_finish(
    choice: *mut peerlb_choice,
    outcome: peerlb_outcome,
    latency_us: i64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { handle::borrow_mut(choice) }?;
        c.check_live()?;
        let outcome = self::outcome(outcome)?;
        c.take()?.finish(outcome, latency(latency_us));
        Ok(())
    })
}

/// `peerlb_load_report` field value meaning "not given" (any negative value does).
pub const PEERLB_LOAD_NOT_GIVEN: f64 = -1.0;

/// What a backend reported about its load with one response, for
/// `peerlb_choice_finish_with_load` (e.g. from its `endpoint-load-metrics` header, through
/// `peerlb_load_report_parse`). Each field is optional: a negative value (e.g.
/// `PEERLB_LOAD_NOT_GIVEN`) means "not given"; `peerlb_load_report_init` sets them all so.
/// NaN or an infinity is `PEERLB_INVALID_ARGUMENT`.
///
/// Strategies that use reports: `weighted-round-robin:orca` (utilization, qps, eps: weights
/// as gRPC computes them) and `prequal` (requests in flight); the others ignore them.
///
/// Ownership: the caller's struct; read during the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct peerlb_load_report {
    /// Requests the backend had in flight (from every client): a whole number up to
    /// 4294967295.
    pub requests_in_flight: f64,
    /// Its utilization as a fraction of its capacity (may exceed 1), e.g. CPU.
    pub utilization: f64,
    /// Queries per second it serves.
    pub qps: f64,
    /// Errors per second it returns.
    pub eps: f64,
}

impl Handle for peerlb_load_report {
    type Target = peerlb_load_report;
    type Ownership = CallerOwned;
    const NAME: &'static str = "load";
}

impl peerlb_load_report {
    /// Every field "not given".
    const EMPTY: peerlb_load_report = peerlb_load_report {
        requests_in_flight: PEERLB_LOAD_NOT_GIVEN,
        utilization: PEERLB_LOAD_NOT_GIVEN,
        qps: PEERLB_LOAD_NOT_GIVEN,
        eps: PEERLB_LOAD_NOT_GIVEN,
    };

    /// The core's report; NaN, infinities and fractional in-flight counts are
    /// `invalid-argument`, negative numbers "not given".
    fn to_core(self) -> Result<LoadReport, Error> {
        let field = |name: &str, v: f64| -> Result<Option<f64>, Error> {
            if !v.is_finite() {
                return Err(invalid(format!("load report: {name} is {v}; give a finite number, or a negative one for \"not given\"")));
            }
            Ok((v >= 0.0).then_some(v))
        };
        let report = LoadReport {
            requests_in_flight: field("requests_in_flight", self.requests_in_flight)?
                .map(LoadReport::in_flight_from_f64)
                .transpose()?,
            utilization: field("utilization", self.utilization)?,
            qps: field("qps", self.qps)?,
            eps: field("eps", self.eps)?,
        };
        report.validate()?;
        Ok(report)
    }

    fn from_core(report: &LoadReport) -> peerlb_load_report {
        let given = |v: Option<f64>| v.unwrap_or(PEERLB_LOAD_NOT_GIVEN);
        peerlb_load_report {
            requests_in_flight: given(report.requests_in_flight.map(f64::from)),
            utilization: given(report.utilization),
            qps: given(report.qps),
            eps: given(report.eps),
        }
    }
}

/// Sets every field of `*report` to "not given" (`PEERLB_LOAD_NOT_GIVEN`).
///
/// Ownership: `*report` is the caller's; only written.
/// Thread safety: any thread.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL report.
///
/// # Safety
/// `report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_load_report_init(report: *mut peerlb_load_report) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { handle::out(report, "report") }?;
        out.write(peerlb_load_report::EMPTY);
        Ok(())
    })
}

/// Reads the value of an `endpoint-load-metrics` response header in ORCA's text form
/// (`"TEXT cpu_utilization=0.3, rps_fractional=120, eps=1.5, named_metrics.rif=7"`) into
/// `*report`: `application_utilization` (when above 0) or else `cpu_utilization` is the
/// utilization, `rps_fractional` the qps, `eps` the eps, and `named_metrics.rif` (or
/// `named_metrics.requests_in_flight`) the requests in flight; fields it does not give
/// are `PEERLB_LOAD_NOT_GIVEN`.
///
/// Ownership: `text` and `*report` are the caller's; `text` is read during the call only.
/// Thread safety: any thread.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, text that is not UTF-8, a value
/// that is not a finite number ≥ 0, a repeated or unknown field, the JSON and BIN forms, or
/// text over 8192 bytes; `*report` is then left as it was.
///
/// # Safety
/// `text` NULL or NUL-terminated; `report` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_load_report_parse(
    text: *const c_char,
    report: *mut peerlb_load_report,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let text = unsafe { handle::c_str(text, "text") }?;
        // SAFETY: forwarded contract.
        let out = unsafe { handle::out(report, "report") }?;
        let parsed = LoadReport::from_orca(text)?;
        out.write(peerlb_load_report::from_core(&parsed));
        Ok(())
    })
}

/// `peerlb_choice_finish` with the backend's load report (NULL: none), which strategies
/// that use reports hear before the outcome.
///
/// Ownership: as `peerlb_choice_finish`; `*load` is the caller's, read during the call only.
/// Errors: as `peerlb_choice_finish`, and `PEERLB_INVALID_ARGUMENT` for a report with a
/// NaN or infinite field or a fractional or too large `requests_in_flight` (the choice is
/// then left as it was, still to be finished).
///
/// # Safety
/// As `peerlb_choice_finish`; `load` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn peerlb_choice_finish_with_load(
    choice: *mut peerlb_choice,
    outcome: peerlb_outcome,
    latency_us: i64,
    load: *const peerlb_load_report,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { handle::borrow_mut(choice) }?;
        c.check_live()?;
        let outcome = self::outcome(outcome)?;
        // SAFETY: forwarded contract.
        let load = unsafe { handle::borrow_optional(load) }
            .map(|l| l.to_core())
            .transpose()?;
        c.take()?
            .finish_with_load(outcome, latency(latency_us), load.as_ref());
        Ok(())
    })
}
