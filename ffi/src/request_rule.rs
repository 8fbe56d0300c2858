//! The request rule from C: how an HTTP client written in C (libcurl, a hand-made one)
//! gets the same outcomes and retries as the Python, Node and Rust integrations. A
//! `peerlb_request_rule` is configured once; each request is a `peerlb_request_call`,
//! driven step by step (choose, send, report) like `peerlb_retry`. The decisions are the
//! core's `peerlb::request_rule`.

use std::ffi::c_char;

use peerlb::request_rule::{AttemptResult, RequestCall, RequestInfo, RequestRule, StopReason};
use peerlb::Error;

use crate::boundary::guard;
use crate::choice::{outcome, peerlb_choice, peerlb_outcome, peerlb_request, request_from};
use crate::error::{invalid, peerlb_status};
use crate::handle::{self, Handle, Owned};
use crate::list::peerlb_list;
use crate::retry::peerlb_retry_budget;

/// What happened to one attempt (one of the `PEERLB_ATTEMPT_*` values; any other value is
/// `PEERLB_INVALID_ARGUMENT`).
pub type peerlb_attempt_result = u32;
/// The peer answered; the status code is the report's `status` argument (100..=599).
pub const PEERLB_ATTEMPT_STATUS: peerlb_attempt_result = 0;
/// The connection could not be made (refused, unreachable, connect timeout): the request
/// was not sent, so any method may be retried.
pub const PEERLB_ATTEMPT_CONNECT_FAILED: peerlb_attempt_result = 1;
/// The connection broke after the request started (reset, closed before a response).
pub const PEERLB_ATTEMPT_RESET: peerlb_attempt_result = 2;
/// No response within the attempt's timeout.
pub const PEERLB_ATTEMPT_TIMED_OUT: peerlb_attempt_result = 3;
/// Any other transport error (protocol, TLS, ...).
pub const PEERLB_ATTEMPT_FAILED: peerlb_attempt_result = 4;

/// Why a failed attempt was not retried (`peerlb_request_report.stopped`).
pub type peerlb_stop_reason = u32;
/// Not stopped: the report says retry, or the outcome was not a failure.
pub const PEERLB_STOP_NONE: peerlb_stop_reason = 0;
/// The rule does not retry it (a method that is not idempotent and was sent, or a body
/// that cannot be sent again).
pub const PEERLB_STOP_NOT_RETRYABLE: peerlb_stop_reason = 1;
/// `max_attempts` attempts were made.
pub const PEERLB_STOP_ATTEMPTS_EXHAUSTED: peerlb_stop_reason = 2;
/// The retry budget refused another attempt.
pub const PEERLB_STOP_BUDGET_EXHAUSTED: peerlb_stop_reason = 3;
/// The rule's overall timeout passed.
pub const PEERLB_STOP_TIMED_OUT: peerlb_stop_reason = 4;

/// `peerlb_request_call_report`'s `classified` value meaning "no classifier's outcome:
/// the rule decides" (any negative value does).
pub const PEERLB_OUTCOME_UNCLASSIFIED: i32 = -1;

/// The rule every HTTP integration applies: a connect error, reset, timeout or a status in
/// `failure_statuses` (default 5xx) is a failure of the peer, any other status is ok; a
/// failure is retried on another peer when the method is idempotent (GET, HEAD, OPTIONS,
/// TRACE, PUT, DELETE), the request opted in, or the connect failed (nothing was sent),
/// the body can be sent again, attempts are left, the overall timeout has not passed and
/// the retry budget agrees.
///
/// Ownership: made by `peerlb_request_rule_new`, freed with `peerlb_request_rule_free`;
/// calls made with it keep their own reference, so it may be freed before them.
/// Thread safety: one rule may be used by any number of calls on any threads.
pub struct peerlb_request_rule {
    _private: [u8; 0],
}

impl Handle for peerlb_request_rule {
    type Target = RequestRule;
    type Ownership = Owned;
    const NAME: &'static str = "rule";
}

/// One HTTP request under a rule, driven step by step:
///
/// ```c
/// peerlb_request_call *call;
/// peerlb_request_call_new(rule, "GET", true, -1, &call);
/// peerlb_choice c;
/// peerlb_status st = peerlb_request_call_choose(call, list, NULL, &c);
/// while (st == PEERLB_OK) {
///     long status = 0;
///     CURLcode rc = send_to(c.peer, c.peer_len, &status);   // CURLOPT_CONNECT_TO
///     peerlb_request_report r;
///     peerlb_request_call_report(call, &c, rc == CURLE_OK ? PEERLB_ATTEMPT_STATUS
///                                : kind_of(rc), (uint32_t)status, PEERLB_OUTCOME_UNCLASSIFIED, &r);
///     if (!r.retry) break;                  // this attempt's response (or error) is the answer
///     st = peerlb_request_call_choose(call, list, NULL, &c);  // another peer
/// }
/// peerlb_request_call_free(call);
/// ```
///
/// Ownership: made by `peerlb_request_call_new`, freed with `peerlb_request_call_free`.
/// Thread safety: not synchronized; use a call from one thread at a time (it may move
/// between threads). Its choices may be finished on any thread.
pub struct peerlb_request_call {
    _private: [u8; 0],
}

impl Handle for peerlb_request_call {
    type Target = CallState;
    type Ownership = Owned;
    const NAME: &'static str = "call";
}

/// What a `peerlb_request_call` points to.
pub(crate) struct CallState {
    /// The core's call; `None` only if an internal error interrupted a choose.
    call: Option<RequestCall>,
}

/// The error for a call whose state an earlier internal error took.
fn lost() -> Error {
    Error::Internal("this call was interrupted by an earlier internal error".into())
}

impl CallState {
    fn call(&mut self) -> Result<&mut RequestCall, Error> {
        self.call.as_mut().ok_or_else(lost)
    }

    fn get(&self) -> Result<&RequestCall, Error> {
        self.call.as_ref().ok_or_else(lost)
    }
}

/// What `peerlb_request_call_report` decided.
///
/// Ownership: the caller's struct, written by the report.
#[repr(C)]
pub struct peerlb_request_report {
    /// The outcome the attempt's choice was finished with (`PEERLB_OUTCOME_*`).
    pub outcome: peerlb_outcome,
    /// The latency reported with it, in microseconds: from the choose to the report.
    pub latency_us: i64,
    /// Whether to choose again and send the request to another peer; when false, this
    /// attempt's response (or error) is the request's.
    pub retry: bool,
    /// Why a failed attempt is not retried (`PEERLB_STOP_*`; `PEERLB_STOP_NONE` otherwise).
    pub stopped: peerlb_stop_reason,
}

/// Creates a request rule from a spec: `key=value` pairs joined by `&`, any of
/// `failure_statuses` (codes and ranges, e.g. `502-504,429`; default `500-599`),
/// `max_attempts` (1..=100, default 3), `timeout_ms` (the whole request's limit; default
/// none), `budget` (`default`: a budget of the rule's own, 20 % of requests + 10 retries
/// per second over 10 s; `off`), `retry_any_method` (`true`/`false`, default false). NULL,
/// `""` and `"default"` are the defaults. A non-NULL `budget` replaces the spec's budget
/// with that shared one (the rule keeps its own reference).
///
/// Ownership: the caller frees `*out` with `peerlb_request_rule_free`; `spec` and
/// `budget` are only read.
/// Errors: `PEERLB_INVALID_ARGUMENT` (naming the spec and the key) for a malformed spec,
/// an unknown key, a bad value, or a NULL `out`.
///
/// # Safety
/// `spec` NULL or NUL-terminated; `budget` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_request_rule_new(
    spec: *const c_char,
    budget: *const peerlb_retry_budget,
    out: *mut *mut peerlb_request_rule,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { handle::out(out, "out") }?;
        let spec = if spec.is_null() {
            ""
        } else {
            // SAFETY: forwarded contract.
            unsafe { handle::c_str(spec, "spec") }?
        };
        // SAFETY: forwarded contract.
        let budget = unsafe { handle::borrow_optional(budget) }.cloned();
        out.write(handle::into_raw(RequestRule::from_spec(spec, budget)?));
        Ok(())
    })
}

/// Frees the caller's rule handle; calls made with it keep it alive. NULL is ignored.
///
/// Ownership: takes `rule` back.
///
/// # Safety
/// `rule` must be NULL or from `peerlb_request_rule_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_request_rule_free(rule: *mut peerlb_request_rule) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(rule) }
}

/// Starts one request under `rule` (its overall timeout counts from now): `method` as sent
/// (case-sensitive, NUL-terminated), whether its body can be sent again
/// (`body_replayable`: true for no body or one in memory, false for a stream read once),
/// and `idempotent`: negative for "not given" (the method decides), 0 for "never retry
/// once sent", positive for "safe to send twice" (e.g. a POST with an idempotency key).
///
/// Ownership: the caller frees `*out` with `peerlb_request_call_free`; the call keeps its
/// own reference to the rule.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or a method that is empty or not
/// UTF-8.
///
/// # Safety
/// `rule` NULL or live; `method` NULL or NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_request_call_new(
    rule: *const peerlb_request_rule,
    method: *const c_char,
    body_replayable: bool,
    idempotent: i32,
    out: *mut *mut peerlb_request_call,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (rule, method, out) = unsafe {
            (
                handle::borrow(rule)?,
                handle::c_str(method, "method")?,
                handle::out(out, "out")?,
            )
        };
        if method.is_empty() {
            return Err(invalid("method is empty"));
        }
        let idempotent = (idempotent >= 0).then_some(idempotent > 0);
        let info = RequestInfo::new(method, body_replayable, idempotent);
        out.write(handle::into_raw(CallState {
            call: Some(RequestCall::new(rule, info)),
        }));
        Ok(())
    })
}

/// Chooses the peer for the next attempt, like `peerlb_list_choose` (blocking up to the
/// earlier of the request's timeout and the rule's), preferring a peer this call has not
/// tried. Connect to `c.peer` (`host:port`, e.g. with libcurl's `CURLOPT_CONNECT_TO`, which
/// keeps the URL's Host header and TLS name), then report the attempt with
/// `peerlb_request_call_report`.
///
/// Ownership: borrows `call`, `list` and `request` (NULL: no timeout, no shard key) for the
/// call; `*out` is the caller's struct.
/// Errors (`*out` untouched): the list's (`PEERLB_NO_DEADLINE`, `PEERLB_TIMEOUT`,
/// `PEERLB_NOT_STARTED`, ...) when no peer can be chosen; `PEERLB_RETRY_EXHAUSTED` or
/// `PEERLB_TIMEOUT` when no attempt may start (a choose after a report that said no
/// retry); `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `call` NULL or live; `list` NULL or live; `request` NULL or valid; `out` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_request_call_choose(
    call: *mut peerlb_request_call,
    list: *const peerlb_list,
    request: *const peerlb_request,
    out: *mut peerlb_choice,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (state, list, out) = unsafe {
            (
                handle::borrow_mut(call)?,
                handle::borrow(list)?,
                handle::out(out, "out")?,
            )
        };
        // SAFETY: forwarded contract.
        let request = unsafe { request_from(request) }?;
        state.call()?;
        let core = state.call.take().expect("checked above");
        let (core, chosen) = core.choose_now(list, &request).wait();
        state.call = Some(core);
        out.write(peerlb_choice::from_choice(chosen?));
        Ok(())
    })
}

/// Reports what happened to the attempt on `*choice`: `result` (`PEERLB_ATTEMPT_*`) with
/// `status` (the HTTP status for `PEERLB_ATTEMPT_STATUS`, 100..=599; ignored otherwise),
/// and `classified`: `PEERLB_OUTCOME_UNCLASSIFIED` (negative) to let the rule decide, or a
/// `PEERLB_OUTCOME_*` that overrides the rule's outcome (a classifier of your own). The
/// choice is finished with the outcome and the latency since it was chosen, and cleared.
/// `out->retry` says whether to choose again (the retry is already counted against the
/// attempts and the budget).
///
/// Ownership: ends peerlb's hold on the chosen peer; the structs stay the caller's.
/// Errors (nothing done, the choice left to be finished): `PEERLB_INVALID_ARGUMENT` for
/// NULL arguments, an unknown `result`, a status outside 100..=599 or an unknown
/// `classified`; `PEERLB_ALREADY_FINISHED` for a finished choice.
///
/// # Safety
/// `call` NULL or live; `choice` NULL or a choice from `peerlb_request_call_choose`; `out`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_request_call_report(
    call: *mut peerlb_request_call,
    choice: *mut peerlb_choice,
    result: peerlb_attempt_result,
    status: u32,
    classified: i32,
    out: *mut peerlb_request_report,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (state, choice, out) = unsafe {
            (
                handle::borrow_mut(call)?,
                handle::borrow_mut(choice)?,
                handle::out(out, "out")?,
            )
        };
        let result = attempt_result(result, status)?;
        let classified = match u32::try_from(classified) {
            Ok(value) => Some(outcome(value)?),
            Err(_) => None,
        };
        let core = state.call()?;
        let report = core.report(choice.take()?, result, classified);
        out.write(peerlb_request_report {
            outcome: report.outcome as peerlb_outcome,
            latency_us: i64::try_from(report.latency.as_micros()).unwrap_or(i64::MAX),
            retry: report.retry,
            stopped: match report.stopped {
                None => PEERLB_STOP_NONE,
                Some(StopReason::NotRetryable) => PEERLB_STOP_NOT_RETRYABLE,
                Some(StopReason::AttemptsExhausted) => PEERLB_STOP_ATTEMPTS_EXHAUSTED,
                Some(StopReason::BudgetExhausted) => PEERLB_STOP_BUDGET_EXHAUSTED,
                Some(StopReason::TimedOut) => PEERLB_STOP_TIMED_OUT,
            },
        });
        Ok(())
    })
}

/// The C attempt result as the core's.
fn attempt_result(result: peerlb_attempt_result, status: u32) -> Result<AttemptResult, Error> {
    match result {
        PEERLB_ATTEMPT_STATUS => {
            AttemptResult::status(u16::try_from(status).unwrap_or(0)).map_err(|_| {
                invalid(format!(
                    "status {status} is not an HTTP status in 100..=599"
                ))
            })
        }
        PEERLB_ATTEMPT_CONNECT_FAILED => Ok(AttemptResult::ConnectFailed),
        PEERLB_ATTEMPT_RESET => Ok(AttemptResult::Reset),
        PEERLB_ATTEMPT_TIMED_OUT => Ok(AttemptResult::TimedOut),
        PEERLB_ATTEMPT_FAILED => Ok(AttemptResult::Failed),
        other => Err(invalid(format!(
            "unknown attempt result {other}; expected PEERLB_ATTEMPT_STATUS (0), \
             _CONNECT_FAILED (1), _RESET (2), _TIMED_OUT (3) or _FAILED (4)"
        ))),
    }
}

/// What is left of the rule's overall timeout, in `*remaining_ms` (rounded up; -1 when the
/// rule has no timeout): cap each attempt's own timeout by it (e.g. libcurl's
/// `CURLOPT_TIMEOUT_MS`).
///
/// Ownership: borrows `call` for the call; `*remaining_ms` is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `call` NULL or live; `remaining_ms` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_request_call_remaining_ms(
    call: *const peerlb_request_call,
    remaining_ms: *mut i64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (state, out) = unsafe {
            (
                handle::borrow(call)?,
                handle::out(remaining_ms, "remaining_ms")?,
            )
        };
        let ms = match state.get()?.remaining() {
            None => -1,
            Some(d) => i64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(i64::MAX),
        };
        out.write(ms);
        Ok(())
    })
}

/// How many attempts the call has started, in `*attempts`.
///
/// Ownership: borrows `call` for the call; `*attempts` is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `call` NULL or live; `attempts` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_request_call_attempts(
    call: *const peerlb_request_call,
    attempts: *mut u32,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (state, out) = unsafe { (handle::borrow(call)?, handle::out(attempts, "attempts")?) };
        out.write(state.get()?.attempts());
        Ok(())
    })
}

/// Frees a call. A choice it made that is still unfinished stays valid (finish it with
/// `peerlb_choice_finish`). NULL is ignored.
///
/// Ownership: takes `call` back.
///
/// # Safety
/// `call` must be NULL or from `peerlb_request_call_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_request_call_free(call: *mut peerlb_request_call) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(call) }
}
