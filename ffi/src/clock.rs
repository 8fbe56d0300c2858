//! The manual test clock: a clock that stands still until the caller moves it, so tests of
//! time-based behaviour (ejection backoff, retry budget windows) run instantly and exactly.

use std::time::Duration;

use peerlb::{Clock, ManualClock};

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle::{self, Handle, Owned};
use crate::options::{peerlb_list_options, with_options};

/// A manual clock (for tests): it reads the real time at its creation and then only moves
/// when `peerlb_manual_clock_advance_ms` moves it.
///
/// Give it to lists (`peerlb_list_options_set_manual_clock`) and retry budgets
/// (`peerlb_retry_budget_new`); they share its time. Ejection restorations that come due
/// run inside `peerlb_manual_clock_advance_ms`, on the calling thread (so event callbacks
/// for `PEERLB_EVENT_RESTORED` run there too).
///
/// Ownership: made by `peerlb_manual_clock_new`, freed with `peerlb_manual_clock_free`. The
/// lists and budgets using it hold their own reference, so the handle may be freed before
/// them (their time then stands still for good).
/// Thread safety: every function may be called from any thread at once, except
/// `peerlb_manual_clock_free`, which must be the last use of the handle.
pub struct peerlb_manual_clock {
    _private: [u8; 0],
}

impl Handle for peerlb_manual_clock {
    type Target = ManualClock;
    type Ownership = Owned;
    const NAME: &'static str = "clock";
}

/// Creates a manual clock standing at the current real time.
///
/// Ownership: the caller frees `*out` with `peerlb_manual_clock_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `out` is NULL.
///
/// # Safety
/// `out` must be writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_manual_clock_new(
    out: *mut *mut peerlb_manual_clock,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { handle::out(out, "out") }?;
        out.write(handle::into_raw(ManualClock::new()));
        Ok(())
    })
}

/// Moves the clock forward by `ms` milliseconds, then runs, on this thread and in time
/// order, everything that came due (ejected peers whose time is over are restored, and
/// their event callbacks run) before returning.
///
/// Ownership: borrows `clock` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `clock` is NULL.
///
/// # Safety
/// `clock` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_manual_clock_advance_ms(
    clock: *const peerlb_manual_clock,
    ms: u64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { handle::borrow(clock) }?.advance(Duration::from_millis(ms));
        Ok(())
    })
}

/// How far the clock has been advanced in total, in milliseconds, in `*ms`.
///
/// Ownership: borrows `clock` for the call; `*ms` is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `clock` must be NULL or live; `ms` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_manual_clock_elapsed_ms(
    clock: *const peerlb_manual_clock,
    ms: *mut u64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (clock, ms) = unsafe { (handle::borrow(clock)?, handle::out(ms, "ms")?) };
        ms.write(u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX));
        Ok(())
    })
}

/// Frees the caller's handle. Lists and budgets made with the clock keep using it. NULL
/// is ignored.
///
/// Ownership: takes `clock` back.
///
/// # Safety
/// `clock` must be NULL or from `peerlb_manual_clock_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_manual_clock_free(clock: *mut peerlb_manual_clock) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(clock) }
}

/// Makes lists created from these options run on `clock` instead of the real clock (for
/// ejection times and latency-based strategies). The options keep their own reference, so
/// `clock` may be freed afterwards.
///
/// Ownership: borrows both arguments for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `opts` live options or NULL; `clock` a live clock or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_manual_clock(
    opts: *mut peerlb_list_options,
    clock: *const peerlb_manual_clock,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_options(opts, |o| {
            let manual = handle::borrow(clock)?.clone();
            Ok(o.clock(Clock::from(manual)))
        })
    }
}
