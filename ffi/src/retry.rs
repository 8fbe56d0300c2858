//! Retry on another peer, step by step (C has no closures): choose an attempt's peer,
//! run the attempt, report how it went, repeat. The rules (which peer, when to stop, the
//! final error) are the core's `Retry`.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use peerlb::retry::{Retry, RetryBudget, RetryBudgetOptions, RetryPolicy};
use peerlb::{Choice, Clock, Error};

use crate::boundary::guard;
use crate::choice::{latency, peerlb_choice, peerlb_request, request_from};
use crate::clock::peerlb_manual_clock;
use crate::error::{invalid, peerlb_status};
use crate::handle::{self, Handle, Owned};
use crate::list::peerlb_list;

/// The value of a numeric argument that means "not given: use the core's default" (any
/// negative value does; see `peerlb_retry_budget_new`).
pub const PEERLB_DEFAULT: i64 = -1;

/// A retry budget, shared by many retried calls: over a sliding window of `ttl_ms`,
/// retries may be at most `min_per_sec × ttl + ratio × calls`, so a failing dependency
/// does not turn into a retry storm.
///
/// Ownership: made by `peerlb_retry_budget_new`, freed with `peerlb_retry_budget_free`;
/// retries made with it keep their own reference, so it may be freed before them.
/// Thread safety: any number of retries on any threads may share one budget.
pub struct peerlb_retry_budget {
    _private: [u8; 0],
}

impl Handle for peerlb_retry_budget {
    type Target = Arc<RetryBudget>;
    type Ownership = Owned;
    const NAME: &'static str = "budget";
}

/// One retried call, driven step by step. The loop (see `peerlb_retry_new`):
///
/// ```c
/// peerlb_retry *retry;
/// peerlb_retry_new(3, 2000, budget_or_NULL, &retry);
/// peerlb_status st;
/// for (;;) {
///     peerlb_choice c;
///     st = peerlb_retry_choose(retry, list, &req, &c);
///     if (st != PEERLB_OK) break;              // the final error: see its message
///     int rc = send_request(c.peer, c.peer_len);
///     if (rc == 0) { peerlb_retry_succeeded(retry, &c, -1); break; }
///     if (rc == OVERLOADED) { st = peerlb_retry_declined(retry, &c, "overloaded", -1); break; }
///     peerlb_retry_failed(retry, &c, strerror(rc), -1); // then choose again
/// }
/// peerlb_retry_free(retry);
/// ```
///
/// Ownership: made by `peerlb_retry_new`, freed with `peerlb_retry_free`.
/// Thread safety: not synchronized; use one retry from one thread at a time (it may move
/// between threads). Its choices may be finished on any thread.
pub struct peerlb_retry {
    _private: [u8; 0],
}

/// What a `peerlb_retry` points to.
pub(crate) struct RetryCall {
    /// The core's retry; `None` only if an internal error interrupted a choose.
    retry: Option<Retry>,
    /// Set by `succeeded` and `declined`: the call is over.
    over: bool,
}

impl Handle for peerlb_retry {
    type Target = RetryCall;
    type Ownership = Owned;
    const NAME: &'static str = "retry";
}

impl RetryCall {
    fn retry(&mut self) -> Result<&mut Retry, Error> {
        self.retry.as_mut().ok_or_else(lost)
    }
}

/// The error for a retry whose state an earlier internal error took.
fn lost() -> Error {
    Error::Internal("this retry was interrupted by an earlier internal error".into())
}

/// A signed "not given" argument: negative is `None`.
fn given(value: i64) -> Option<u64> {
    u64::try_from(value).ok()
}

/// Creates a retry budget allowing `ratio` (0..=1) retries per call plus `min_per_sec`
/// retries per second, over a sliding window of `ttl_ms` (1000..=60000). A negative value
/// (`PEERLB_DEFAULT`) for any of the three means the core's default (Finagle's and
/// Envoy's: 0.2, 10, 10000). `clock` may be NULL (the real clock) or a manual clock (for
/// tests; the budget keeps its own reference).
///
/// Ownership: the caller frees `*out` with `peerlb_retry_budget_free`; `clock` is only
/// read.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL `out`, or a ratio (NaN included),
/// `min_per_sec` or window out of range.
///
/// # Safety
/// `clock` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_budget_new(
    ratio: f64,
    min_per_sec: i64,
    ttl_ms: i64,
    clock: *const peerlb_manual_clock,
    out: *mut *mut peerlb_retry_budget,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { handle::out(out, "out") }?;
        let min_per_sec = given(min_per_sec)
            .map(|n| {
                u32::try_from(n).map_err(|_| invalid(format!("min_per_sec {n} is out of range")))
            })
            .transpose()?;
        let options = RetryBudgetOptions {
            // NaN is not negative: it reaches the core, which refuses it.
            ratio: (ratio.is_nan() || ratio >= 0.0).then_some(ratio),
            min_per_sec,
            ttl: given(ttl_ms).map(Duration::from_millis),
        };
        // SAFETY: forwarded contract.
        let clock = match unsafe { handle::borrow_optional(clock) } {
            Some(manual) => Clock::from(manual.clone()),
            None => Clock::real(),
        };
        out.write(handle::into_raw(RetryBudget::from_options(
            &options, clock,
        )?));
        Ok(())
    })
}

/// How many retries the budget would allow right now, in `*balance`.
///
/// Ownership: borrows `budget` for the call; `*balance` is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `budget` NULL or live; `balance` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_budget_balance(
    budget: *const peerlb_retry_budget,
    balance: *mut u64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let budget = unsafe { handle::borrow(budget) }?;
        // SAFETY: forwarded contract.
        unsafe { handle::out(balance, "balance") }?.write(budget.balance());
        Ok(())
    })
}

/// Frees the caller's budget handle; retries using it keep it alive. NULL is ignored.
///
/// Ownership: takes `budget` back.
///
/// # Safety
/// `budget` must be NULL or from `peerlb_retry_budget_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_budget_free(budget: *mut peerlb_retry_budget) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(budget) }
}

/// Starts one retried call: at most `max_attempts` attempts in all (the first included;
/// 0 means the core's default, 3), ending by `timeout_ms` from now (negative: no overall
/// timeout), and, when `budget` is not NULL, retries only while the budget allows them.
///
/// Drive it with `peerlb_retry_choose`, then report each attempt with exactly one of
/// `peerlb_retry_succeeded` (done), `peerlb_retry_failed` (choose again: another peer is
/// preferred), or `peerlb_retry_declined` (done: the peer refused on purpose). The loop
/// is shown on `peerlb_retry`; `peerlb_retry_choose` returns the call's final error when
/// no attempt is left:
///
/// * `PEERLB_RETRY_EXHAUSTED` with message `retry attempts exceeded (e1; e2; e3)` (each
///   failed attempt's error), or `retry budget exhausted (e1)`;
/// * `PEERLB_TIMEOUT` when the overall timeout passed (the message lists the attempts);
/// * the choose's own error (`PEERLB_NOT_STARTED`, `PEERLB_TIMEOUT`, ...) when no peer
///   could be chosen.
///
/// Failed attempts are finished as `PEERLB_OUTCOME_FAILURE`, so they count toward the
/// peer's ejection; declined ones as `PEERLB_OUTCOME_DECLINED`, which never does.
///
/// Ownership: the caller frees `*out` with `peerlb_retry_free`; the retry keeps its own
/// reference to `budget`.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `out` is NULL.
///
/// # Safety
/// `budget` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_new(
    max_attempts: u32,
    timeout_ms: i64,
    budget: *const peerlb_retry_budget,
    out: *mut *mut peerlb_retry,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { handle::out(out, "out") }?;
        let mut policy = RetryPolicy::default();
        if max_attempts > 0 {
            policy = policy.with_max_attempts(max_attempts)?;
        }
        if let Some(ms) = given(timeout_ms) {
            policy = policy.timeout(Duration::from_millis(ms));
        }
        // SAFETY: forwarded contract.
        if let Some(budget) = unsafe { handle::borrow_optional(budget) } {
            policy = policy.budget(budget.clone());
        }
        out.write(handle::into_raw(RetryCall {
            retry: Some(Retry::new(&policy)),
            over: false,
        }));
        Ok(())
    })
}

/// Chooses the peer for the next attempt, like `peerlb_list_choose` (blocking up to the
/// earlier of the request's timeout and the retry's), preferring a peer this call has not
/// tried yet (hash strategies get the shard key varied per retry). On success `*out` is
/// the attempt's choice: report it with `peerlb_retry_succeeded`, `_failed` or
/// `_declined` (or, to abandon the call, `peerlb_choice_finish`).
///
/// Ownership: borrows `retry`, `list` and `request` for the call; `*out` is the caller's
/// struct.
/// Errors (`*out` untouched): the call's final error (see `peerlb_retry_new`), or
/// `PEERLB_INVALID_ARGUMENT` for NULL arguments or a retry already over (succeeded or
/// declined).
///
/// # Safety
/// `retry` NULL or live; `list` NULL or live; `request` NULL or valid; `out` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_choose(
    retry: *mut peerlb_retry,
    list: *const peerlb_list,
    request: *const peerlb_request,
    out: *mut peerlb_choice,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (call, list, out) = unsafe {
            (
                handle::borrow_mut(retry)?,
                handle::borrow(list)?,
                handle::out(out, "out")?,
            )
        };
        if call.over {
            return Err(invalid(
                "this retry is over (it succeeded or was declined); start a new one",
            ));
        }
        // SAFETY: forwarded contract.
        let request = unsafe { request_from(request) }?;
        let retry = call.retry.take().ok_or_else(lost)?;
        let (retry, chosen) = retry.choose_now(list, &request).wait();
        call.retry = Some(retry);
        out.write(peerlb_choice::from_choice(chosen?));
        Ok(())
    })
}

/// Validates a report's retry and choice, then takes the choice (clearing `*choice`).
///
/// # Safety
/// As the report functions.
unsafe fn take_attempt<'a>(
    retry: *mut peerlb_retry,
    choice: *mut peerlb_choice,
) -> Result<(&'a mut RetryCall, Choice), Error> {
    // SAFETY: the pointers are as `# Safety` says.
    let (call, choice) = unsafe { (handle::borrow_mut(retry)?, handle::borrow_mut(choice)?) };
    call.retry()?; // a lost retry leaves the choice to be finished
    Ok((call, choice.take()?))
}

/// The attempt on `*choice` succeeded: finishes it as `PEERLB_OUTCOME_OK` with
/// `latency_us` (negative: unknown) and clears `*choice`. The call is over.
///
/// Ownership: ends peerlb's hold on the chosen peer; the structs stay the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, `PEERLB_ALREADY_FINISHED` for a
/// finished choice (nothing is done then).
///
/// # Safety
/// `retry` NULL or live; `choice` NULL or a choice from `peerlb_retry_choose`.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_succeeded(
    retry: *mut peerlb_retry,
    choice: *mut peerlb_choice,
    latency_us: i64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let (call, choice) = unsafe { take_attempt(retry, choice) }?;
        call.over = true;
        call.retry()?.succeeded(choice, latency(latency_us));
        Ok(())
    })
}

/// The attempt on `*choice` failed with `error` (a NUL-terminated message, copied;
/// non-UTF-8 bytes are replaced): finishes it as `PEERLB_OUTCOME_FAILURE` (it counts toward
/// the peer's ejection) and clears `*choice`. Call `peerlb_retry_choose` next: it tries
/// another peer, or returns the final error listing every attempt's `error`.
///
/// Ownership: ends peerlb's hold on the chosen peer; the structs and `error` stay the
/// caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, `PEERLB_ALREADY_FINISHED` for a
/// finished choice (nothing is done then).
///
/// # Safety
/// `retry` NULL or live; `choice` NULL or a choice from `peerlb_retry_choose`; `error`
/// NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_failed(
    retry: *mut peerlb_retry,
    choice: *mut peerlb_choice,
    error: *const c_char,
    latency_us: i64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (error, (call, choice)) = unsafe {
            (
                handle::c_str_lossy(error, "error")?,
                take_attempt(retry, choice)?,
            )
        };
        call.retry()?.failed(choice, error, latency(latency_us));
        Ok(())
    })
}

/// The peer declined the attempt on purpose (e.g. overloaded; `reason` is a NUL-terminated
/// message, copied): finishes it as `PEERLB_OUTCOME_DECLINED` (no ejection, no retry),
/// clears `*choice`, and ends the call: returns `PEERLB_DECLINED` with the message
/// `peer "<id>" declined the request: <reason>` (and the peer in
/// `peerlb_last_error_peer`).
///
/// Ownership: ends peerlb's hold on the chosen peer; the structs and `reason` stay the
/// caller's.
/// Errors: `PEERLB_DECLINED` when the report was taken (always, for valid arguments);
/// `PEERLB_INVALID_ARGUMENT` for NULL arguments, `PEERLB_ALREADY_FINISHED` for a finished
/// choice (nothing is done then).
///
/// # Safety
/// `retry` NULL or live; `choice` NULL or a choice from `peerlb_retry_choose`; `reason`
/// NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_declined(
    retry: *mut peerlb_retry,
    choice: *mut peerlb_choice,
    reason: *const c_char,
    latency_us: i64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (reason, (call, choice)) = unsafe {
            (
                handle::c_str_lossy(reason, "reason")?,
                take_attempt(retry, choice)?,
            )
        };
        call.over = true;
        Err(call.retry()?.declined(choice, reason, latency(latency_us)))
    })
}

/// `peerlb_retry_failed` with the remote system's own code for the failure (an HTTP
/// status, ...): the call's final error then carries the last failed attempt's peer and
/// code (`peerlb_last_error_peer`, `peerlb_last_error_remote_code`).
///
/// Ownership: as `peerlb_retry_failed`. Errors: as `peerlb_retry_failed`.
///
/// # Safety
/// As `peerlb_retry_failed`.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_failed_with_code(
    retry: *mut peerlb_retry,
    choice: *mut peerlb_choice,
    error: *const c_char,
    remote_code: i64,
    latency_us: i64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (error, (call, choice)) = unsafe {
            (
                handle::c_str_lossy(error, "error")?,
                take_attempt(retry, choice)?,
            )
        };
        call.retry()?
            .failed_with_code(choice, error, Some(remote_code), latency(latency_us));
        Ok(())
    })
}

/// `peerlb_retry_declined` with the remote system's own code for the refusal (e.g. HTTP
/// 401): the `PEERLB_DECLINED` error carries it (`peerlb_last_error_remote_code`) beside
/// the peer (`peerlb_last_error_peer`).
///
/// Ownership: as `peerlb_retry_declined`. Errors: as `peerlb_retry_declined`.
///
/// # Safety
/// As `peerlb_retry_declined`.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_declined_with_code(
    retry: *mut peerlb_retry,
    choice: *mut peerlb_choice,
    reason: *const c_char,
    remote_code: i64,
    latency_us: i64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (reason, (call, choice)) = unsafe {
            (
                handle::c_str_lossy(reason, "reason")?,
                take_attempt(retry, choice)?,
            )
        };
        call.over = true;
        Err(call.retry()?.declined_with_code(
            choice,
            reason,
            Some(remote_code),
            latency(latency_us),
        ))
    })
}

/// How many attempts the call has made so far, in `*attempts`.
///
/// Ownership: borrows `retry` for the call; `*attempts` is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `retry` NULL or live; `attempts` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_attempts(
    retry: *const peerlb_retry,
    attempts: *mut u32,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (call, attempts) =
            unsafe { (handle::borrow(retry)?, handle::out(attempts, "attempts")?) };
        attempts.write(call.retry.as_ref().ok_or_else(lost)?.attempts());
        Ok(())
    })
}

/// Frees a retry. Choices it handed out and that are not reported yet stay valid and
/// must still be finished (`peerlb_choice_finish`). NULL is ignored.
///
/// Ownership: takes `retry` back (and its reference to the budget).
///
/// # Safety
/// `retry` must be NULL or from `peerlb_retry_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_free(retry: *mut peerlb_retry) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(retry) }
}
