//! Requests and choices: what `peerlb_list_choose` takes and gives, and how a choice ends
//! (`peerlb_choice_finish`).

use std::ffi::{c_char, c_void};
use std::time::Duration;

use peerlb::{Choice, Error, Outcome, Request};

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
    pub(crate) fn check_live(&self) -> Result<(), Error> {
        if self.token.is_null() {
            // The struct no longer names its peer (finishing cleared it, and the peer's
            // memory may be gone), so the message cannot either.
            return Err(Error::AlreadyFinished(
                "the choice is already finished (finishing it cleared it), or it was never chosen"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Takes the live choice back, clearing the struct so it cannot be taken twice;
    /// `already-finished` when there is none.
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

/// A latency in microseconds as the core takes it (negative = unknown).
pub(crate) fn latency(latency_us: i64) -> Option<Duration> {
    u64::try_from(latency_us).ok().map(Duration::from_micros)
}

/// A C outcome value as the core's; an unknown value is `invalid-argument`.
pub(crate) fn outcome(value: peerlb_outcome) -> Result<Outcome, Error> {
    match value {
        PEERLB_OUTCOME_OK => Ok(Outcome::Ok),
        PEERLB_OUTCOME_FAILURE => Ok(Outcome::Failure),
        PEERLB_OUTCOME_DECLINED => Ok(Outcome::Declined),
        PEERLB_OUTCOME_CANCELLED => Ok(Outcome::Cancelled),
        other => Err(invalid(format!(
            "unknown outcome {other}; expected PEERLB_OUTCOME_OK (0), _FAILURE (1), _DECLINED (2) or _CANCELLED (3)"
        ))),
    }
}

/// Reads a C request (NULL: no timeout, no shard key); the shard key is borrowed.
///
/// # Safety
/// `request` must be NULL or valid, its shard key readable for its length during `'a`.
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
