//! Metrics (Prometheus text) and the list options that shape them: `peerlb_list_metrics`,
//! `peerlb_metrics`, `peerlb_list_options_set_name`, `_set_metrics`, `_set_peer_labels`.

use std::ffi::c_char;

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle;
use crate::list::peerlb_list;
use crate::options::{peerlb_list_options, with_options};

/// Names the list: its `list` label in metrics and its path on the admin endpoint
/// (`/lists/{name}/backends`). 1..=128 bytes of ASCII letters, digits, `_`, `-`, `.` and
/// `:`; the core checks it when the list is made (`peerlb_list_new` fails with
/// `PEERLB_INVALID_ARGUMENT` otherwise). Without a name a list is called `list-N`. When
/// several live lists share a name, the process-wide metrics and the admin endpoint show
/// the one made last.
///
/// Ownership: borrows both arguments for the call; the name is copied.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or non-UTF-8.
///
/// # Safety
/// `opts` live options or NULL; `name` a NUL-terminated string or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_name(
    opts: *mut peerlb_list_options,
    name: *const c_char,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.name(handle::c_str(name, "name")?))) }
}

/// Whether the list keeps metrics (default true). Off, it records nothing and
/// `peerlb_list_metrics` gives an empty string.
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_metrics(
    opts: *mut peerlb_list_options,
    on: bool,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.metrics(on))) }
}

/// Whether metrics carry a `peer` label (default true); false collapses the per-peer
/// series of the list into one per list (summed).
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_peer_labels(
    opts: *mut peerlb_list_options,
    on: bool,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.peer_labels(on))) }
}

/// The list's metrics in the Prometheus text format (0.0.4): per peer
/// `peerlb_chosen_total`, `peerlb_finished_total{outcome}`, `peerlb_ejections_total`,
/// `peerlb_pending_requests`, `peerlb_peer_available` / `_ejected` / `_disabled`,
/// `peerlb_request_duration_seconds` (latencies given to `peerlb_choice_finish`, or
/// measured for strategies that use outcomes); per list `peerlb_peers`,
/// `peerlb_available_peers`, `peerlb_ejected_peers`, `peerlb_disabled_peers`,
/// `peerlb_panic_floor_active`, `peerlb_retries_total`,
/// `peerlb_retry_budget_exhausted_total`, and the circuit breakers'. Labels `list` (the
/// list's name) and `peer`. Empty for a list made with metrics off.
///
/// Ownership: the caller frees `*text` with `peerlb_string_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
/// Thread safety: any thread, like every list function.
///
/// # Safety
/// `list` NULL or live; `text` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_metrics(
    list: *const peerlb_list,
    text: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, text) = unsafe { (handle::borrow(list)?, handle::out(text, "text")?) };
        text.write(handle::string_out(list.metrics()));
        Ok(())
    })
}

/// The metrics of every live list of the process (the process-wide registry; a list that
/// shares its name with a newer live list is left out), in the Prometheus text format:
/// what the admin endpoint's `GET /metrics` serves.
///
/// Ownership: the caller frees `*text` with `peerlb_string_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `text` is NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `text` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_metrics(text: *mut *mut c_char) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointer is as `# Safety` says.
        let text = unsafe { handle::out(text, "text") }?;
        text.write(handle::string_out(peerlb::metrics::gather()));
        Ok(())
    })
}
