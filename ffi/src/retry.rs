//! Retry on another peer, step by step (C has no closures): choose an attempt's peer,
//! run the attempt, report how it went, repeat.

use std::ffi::{c_char, CStr};
use std::sync::Arc;
use std::time::Duration;

use peerlb::retry::{Retry, RetryBudget, RetryPolicy};
use peerlb::Clock;

use crate::clock::peerlb_manual_clock;
use crate::error::{guard, guard_value, invalid, peerlb_status};
use crate::list::{latency, list_ref, peerlb_choice, peerlb_list, peerlb_request, request_from};

/// A retry budget, shared by many retried calls: over a sliding window of `ttl_ms`,
/// retries may be at most `min_per_sec × ttl + ratio × calls`, so a failing dependency
/// does not turn into a retry storm.
///
/// Ownership: made by `peerlb_retry_budget_new`, freed with `peerlb_retry_budget_free`;
/// retries made with it keep their own reference, so it may be freed before them.
/// Thread safety: any number of retries on any threads may share one budget.
pub struct peerlb_retry_budget {
    inner: Arc<RetryBudget>,
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
    inner: Retry,
    /// Set by `succeeded` and `declined`: the call is over.
    done: bool,
}

/// Creates a retry budget allowing `ratio` (0..=1) retries per call plus `min_per_sec`
/// retries per second, over a sliding window of `ttl_ms` (1000..=60000). `clock` may be
/// NULL (the real clock) or a manual clock (for tests; the budget keeps its own
/// reference). Finagle's and Envoy's defaults are 0.2, 10, 10000.
///
/// Ownership: the caller frees `*out` with `peerlb_retry_budget_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL `out`, or a ratio or window out of range
/// (NaN included).
///
/// # Safety
/// `clock` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_budget_new(
    ratio: f64,
    min_per_sec: u32,
    ttl_ms: u64,
    clock: *const peerlb_manual_clock,
    out: *mut *mut peerlb_retry_budget,
) -> peerlb_status {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: the caller passes a live clock or NULL.
        let clock = match unsafe { clock.as_ref() } {
            Some(c) => Clock::from(c.inner.clone()),
            None => Clock::real(),
        };
        let budget = RetryBudget::new(ratio, min_per_sec, Duration::from_millis(ttl_ms), clock)?;
        let handle = Box::new(peerlb_retry_budget { inner: budget });
        // SAFETY: checked non-NULL.
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// How many retries the budget would allow right now, in `*balance`.
///
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
        // SAFETY: the caller passes a live budget or NULL.
        let budget = unsafe { budget.as_ref() }.ok_or_else(|| invalid("budget is NULL"))?;
        if balance.is_null() {
            return Err(invalid("balance is NULL"));
        }
        // SAFETY: checked non-NULL.
        unsafe { balance.write(budget.inner.balance()) };
        Ok(())
    })
}

/// Frees the caller's budget handle; retries using it keep it alive. NULL is ignored.
///
/// # Safety
/// `budget` must be NULL or from `peerlb_retry_budget_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_budget_free(budget: *mut peerlb_retry_budget) {
    guard_value((), || {
        if !budget.is_null() {
            // SAFETY: from Box::into_raw in peerlb_retry_budget_new.
            drop(unsafe { Box::from_raw(budget) });
        }
    })
}

/// Starts one retried call: at most `max_attempts` attempts in all (the first included;
/// 0 counts as 1), ending by `timeout_ms` from now (negative: no overall timeout), and,
/// when `budget` is not NULL, retries only while the budget allows them.
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
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let mut policy = RetryPolicy::new(max_attempts);
        if let Ok(ms) = u64::try_from(timeout_ms) {
            policy = policy.timeout(Duration::from_millis(ms));
        }
        // SAFETY: the caller passes a live budget or NULL.
        if let Some(b) = unsafe { budget.as_ref() } {
            policy = policy.budget(b.inner.clone());
        }
        let handle = Box::new(peerlb_retry {
            inner: Retry::new(&policy),
            done: false,
        });
        // SAFETY: checked non-NULL.
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Borrows a retry mutably or fails with invalid-argument.
///
/// # Safety
/// `retry` must be NULL or live, and not used by another thread meanwhile.
unsafe fn retry_mut<'a>(retry: *mut peerlb_retry) -> Result<&'a mut peerlb_retry, peerlb::Error> {
    // SAFETY: the caller passes a live retry or NULL.
    unsafe { retry.as_mut() }.ok_or_else(|| invalid("retry is NULL"))
}

/// Chooses the peer for the next attempt, like `peerlb_list_choose` (blocking up to the
/// earlier of the request's timeout and the retry's), preferring a peer this call has not
/// tried yet (hash strategies get the shard key varied per retry). On success `*out` is
/// the attempt's choice: report it with `peerlb_retry_succeeded`, `_failed` or
/// `_declined` (or, to abandon the call, `peerlb_choice_finish`).
///
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
        // SAFETY: forwarded contract.
        let retry = unsafe { retry_mut(retry) }?;
        // SAFETY: forwarded contract.
        let list = unsafe { list_ref(list) }?;
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        if retry.done {
            return Err(invalid(
                "this retry is over (it succeeded or was declined); start a new one",
            ));
        }
        // SAFETY: forwarded contract.
        let request = unsafe { request_from(request) }?;
        let choice = retry.inner.choose(list, &request)?;
        // SAFETY: checked non-NULL.
        unsafe { out.write(peerlb_choice::from_choice(choice)) };
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
) -> Result<(&'a mut peerlb_retry, peerlb::Choice), peerlb::Error> {
    // SAFETY: forwarded contract.
    let retry = unsafe { retry_mut(retry) }?;
    // SAFETY: the caller passes a valid choice or NULL.
    let c = unsafe { choice.as_mut() }.ok_or_else(|| invalid("choice is NULL"))?;
    c.check_live()?;
    // SAFETY: checked live; it came from peerlb_retry_choose (or peerlb_list_choose).
    Ok((retry, unsafe { c.take() }))
}

/// Reads an attempt's error message (NULL is invalid; non-UTF-8 bytes are replaced).
///
/// # Safety
/// `message` NULL or NUL-terminated.
unsafe fn message(what: &str, message: *const c_char) -> Result<String, peerlb::Error> {
    if message.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string.
    Ok(unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned())
}

/// The attempt on `*choice` succeeded: finishes it as `PEERLB_OUTCOME_OK` with
/// `latency_us` (negative: unknown) and clears `*choice`. The call is over.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or a finished choice (nothing is
/// done then).
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
        let (retry, choice) = unsafe { take_attempt(retry, choice) }?;
        retry.done = true;
        retry.inner.succeeded(choice, latency(latency_us));
        Ok(())
    })
}

/// The attempt on `*choice` failed with `error` (a NUL-terminated message, copied;
/// non-UTF-8 bytes are replaced): finishes it as `PEERLB_OUTCOME_FAILURE` (it counts toward
/// the peer's ejection) and clears `*choice`. Call `peerlb_retry_choose` next: it tries
/// another peer, or returns the final error listing every attempt's `error`.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or a finished choice (nothing is
/// done then; the choice is still to be finished).
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
        // SAFETY: forwarded contract.
        let error = unsafe { message("error", error) }?;
        // SAFETY: forwarded contract.
        let (retry, choice) = unsafe { take_attempt(retry, choice) }?;
        retry.inner.failed(choice, error, latency(latency_us));
        Ok(())
    })
}

/// The peer declined the attempt on purpose (e.g. overloaded; `reason` is a NUL-terminated
/// message, copied): finishes it as `PEERLB_OUTCOME_DECLINED` (no ejection, no retry),
/// clears `*choice`, and ends the call: returns `PEERLB_DECLINED` with the message
/// `peer "<id>" declined the request: <reason>`.
///
/// Errors: `PEERLB_DECLINED` when the report was taken (always, for valid arguments);
/// `PEERLB_INVALID_ARGUMENT` for NULL arguments or a finished choice (nothing is done
/// then; the choice is still to be finished).
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
        // SAFETY: forwarded contract.
        let reason = unsafe { message("reason", reason) }?;
        // SAFETY: forwarded contract.
        let (retry, choice) = unsafe { take_attempt(retry, choice) }?;
        retry.done = true;
        Err(retry.inner.declined(choice, reason, latency(latency_us)))
    })
}

/// How many attempts the call has made so far, in `*attempts`.
///
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
        // SAFETY: the caller passes a live retry or NULL.
        let retry = unsafe { retry.as_ref() }.ok_or_else(|| invalid("retry is NULL"))?;
        if attempts.is_null() {
            return Err(invalid("attempts is NULL"));
        }
        // SAFETY: checked non-NULL.
        unsafe { attempts.write(retry.inner.attempts()) };
        Ok(())
    })
}

/// Frees a retry. Choices it handed out and that are not reported yet stay valid and
/// must still be finished (`peerlb_choice_finish`). NULL is ignored.
///
/// # Safety
/// `retry` must be NULL or from `peerlb_retry_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_retry_free(retry: *mut peerlb_retry) {
    guard_value((), || {
        if !retry.is_null() {
            // SAFETY: from Box::into_raw in peerlb_retry_new.
            drop(unsafe { Box::from_raw(retry) });
        }
    })
}
