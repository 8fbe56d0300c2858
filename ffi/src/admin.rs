//! Backend administration: disable, enable, reset, delete and fail over one peer of a list,
//! add a backend from JSON, and one backend's configuration as JSON.

use std::ffi::c_char;

use peerlb::admin::AdminOp;
use peerlb::AdminResult;

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle;
use crate::list::peerlb_list;

/// What an admin operation did, with a WebSocket balancer's numbers (its
/// `ResultSuccess`, `ResultNoActionReqd`, `ResultFailed`): one of the `PEERLB_RESULT_*`
/// values. A *failed* operation also returns a non-OK `peerlb_status` (with
/// `peerlb_last_error_message()`).
#[allow(non_camel_case_types)]
pub type peerlb_admin_result = u32;
/// The operation changed the peer's state.
pub const PEERLB_RESULT_SUCCESS: peerlb_admin_result = 1;
/// The peer was already in the requested state; nothing changed.
pub const PEERLB_RESULT_NO_ACTION_REQUIRED: peerlb_admin_result = 3;
/// The operation failed (its status says why).
pub const PEERLB_RESULT_FAILED: peerlb_admin_result = 4;
/// Older name of `PEERLB_RESULT_SUCCESS` (same value).
pub const PEERLB_ADMIN_SUCCESS: peerlb_admin_result = PEERLB_RESULT_SUCCESS;
/// Older name of `PEERLB_RESULT_NO_ACTION_REQUIRED` (same value).
pub const PEERLB_ADMIN_NO_ACTION_REQUIRED: peerlb_admin_result = PEERLB_RESULT_NO_ACTION_REQUIRED;

fn to_c(result: AdminResult) -> peerlb_admin_result {
    match result {
        AdminResult::Success => PEERLB_RESULT_SUCCESS,
        AdminResult::NoActionRequired => PEERLB_RESULT_NO_ACTION_REQUIRED,
    }
}

/// Runs admin operation `op` (the core's dispatch) on peer `id` (`len` bytes of UTF-8),
/// writing its result.
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `result` NULL or writable.
unsafe fn admin(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    result: *mut peerlb_admin_result,
    op: AdminOp,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let result = unsafe { handle::out(result, "result")? };
        // SAFETY: the pointers are as `# Safety` says.
        let args =
            unsafe { handle::borrow(list).and_then(|l| Ok((l, handle::str_at(id, len, "id")?))) };
        let outcome = args.and_then(|(list, id)| list.admin(op, id));
        result.write(match &outcome {
            Ok(r) => to_c(*r),
            Err(_) => PEERLB_RESULT_FAILED,
        });
        outcome.map(drop)
    })
}

/// Admin: no new requests go to peer `id` (`len` bytes of UTF-8); requests in flight
/// finish normally. It stays disabled across updates, even if it is removed and added
/// again, until `peerlb_list_enable` or `peerlb_list_delete`. Subscribers get
/// `PEERLB_EVENT_DISABLED`.
///
/// `*result` is `PEERLB_RESULT_SUCCESS`, or `PEERLB_RESULT_NO_ACTION_REQUIRED` when it was
/// disabled already.
/// Errors (*failed*; `*result` is `PEERLB_RESULT_FAILED` when `result` is not NULL):
/// `PEERLB_INVALID_ARGUMENT` (NULL arguments, non-UTF-8, empty or over-long id),
/// `PEERLB_PEER_NOT_IN_LIST`.
/// Ownership: borrows every argument for the call; `*result` is the caller's.
/// Thread safety: any thread, like every list function.
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `result` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_disable(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    result: *mut peerlb_admin_result,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { admin(list, id, len, result, AdminOp::Disable) }
}

/// Admin: undoes `peerlb_list_disable` for peer `id`. Subscribers get
/// `PEERLB_EVENT_ENABLED`.
///
/// `*result` is `PEERLB_RESULT_SUCCESS`, or `PEERLB_RESULT_NO_ACTION_REQUIRED` when it was
/// not disabled.
///
/// Ownership: as `peerlb_list_disable`. Errors: as `peerlb_list_disable`.
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `result` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_enable(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    result: *mut peerlb_admin_result,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { admin(list, id, len, result, AdminOp::Enable) }
}

/// Admin: clears peer `id`'s ejection (it is offered again at once; subscribers get
/// `PEERLB_EVENT_RESTORED`) and its failure history (streak and ejection count, so its
/// next ejection is again the shortest).
///
/// `*result` is `PEERLB_RESULT_SUCCESS`, or `PEERLB_RESULT_NO_ACTION_REQUIRED` when it had
/// no ejection and no failures to forget.
///
/// Ownership: as `peerlb_list_disable`. Errors: as `peerlb_list_disable`.
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `result` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_reset(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    result: *mut peerlb_admin_result,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { admin(list, id, len, result, AdminOp::Reset) }
}

/// Admin: removes peer `id` from the list, as `peerlb_list_update` would (a running list
/// releases it through its transport), and forgets its admin state.
///
/// `*result` is `PEERLB_RESULT_SUCCESS`. Sessions bound to the peer are asked to move
/// (`PEERLB_SESSION_EVENT_FAILOVER_REQUESTED`); they stay open.
///
/// Ownership: as `peerlb_list_disable`. Errors: as `peerlb_list_disable`, and
/// `PEERLB_TRANSPORT_FAILED` when the transport failed to release it (it is removed
/// anyway).
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `result` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_delete(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    result: *mut peerlb_admin_result,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { admin(list, id, len, result, AdminOp::Delete) }
}

/// Admin: asks every open session bound to peer `id` to move to another peer (their
/// `peerlb_session_failover_requested` turns true and session subscribers get
/// `PEERLB_SESSION_EVENT_FAILOVER_REQUESTED`); the sessions' owners fail them over with
/// `peerlb_session_failover`. peerlb never closes a session itself.
///
/// `*result` is `PEERLB_RESULT_SUCCESS` when a session was asked, or
/// `PEERLB_RESULT_NO_ACTION_REQUIRED` when none is bound there (or all were asked already).
///
/// Ownership: as `peerlb_list_disable`. Errors: as `peerlb_list_disable`.
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `result` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_failover(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    result: *mut peerlb_admin_result,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { admin(list, id, len, result, AdminOp::Failover) }
}

/// Admin: adds the backend described by JSON `data` (`len` bytes of UTF-8), e.g.
/// `{"id":"10.0.0.7:80","weight":2}` (`id` required; `weight` at least 1, default 1;
/// other keys are ignored and listed), as `peerlb_list_update` would add it. `*json` is
/// the answer, written in every case once the arguments are valid:
/// `{"result":"success","code":1,"id":"10.0.0.7:80"}`, or
/// `{"result":"failed","code":4,"reason":"...","error":"peer-already-in-list",...}`.
///
/// Ownership: the caller frees `*json` with `peerlb_string_free`.
/// Errors: the failure's own status when it failed (`PEERLB_INVALID_ARGUMENT` for
/// malformed data, an invalid id or weight; `PEERLB_PEER_ALREADY_IN_LIST`;
/// `PEERLB_TRANSPORT_FAILED`), with `*json` written all the same;
/// `PEERLB_INVALID_ARGUMENT` with `*json` untouched for NULL arguments or non-UTF-8 data.
///
/// # Safety
/// `list` NULL or live; `data` NULL or readable for `len` bytes; `json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_add_backend(
    list: *const peerlb_list,
    data: *const c_char,
    len: usize,
    json: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, data, json) = unsafe {
            (
                handle::borrow(list)?,
                handle::str_at(data, len, "data")?,
                handle::out(json, "json")?,
            )
        };
        let (result, answer) = list.add_backend_result(data);
        json.write(handle::string_out(answer));
        result.map(drop)
    })
}

/// Admin: one backend's configuration and state as JSON, the element of
/// `peerlb_list_backends` for peer `id` (`len` bytes of UTF-8): weight, status, pending,
/// admin state, ejection state, counters and open sessions.
///
/// Ownership: the caller frees `*json` with `peerlb_string_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` (NULL arguments, non-UTF-8, empty or over-long id),
/// `PEERLB_PEER_NOT_IN_LIST`.
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_backend_config(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    json: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, id, json) = unsafe {
            (
                handle::borrow(list)?,
                handle::str_at(id, len, "id")?,
                handle::out(json, "json")?,
            )
        };
        json.write(handle::string_out(list.backend_config(id)?));
        Ok(())
    })
}

/// The name of an admin result: `"success"`, `"no-action-required"`, `"failed"`, or
/// `"unknown"` for any other value.
///
/// Ownership: a static string; never free it. Never NULL. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn peerlb_admin_result_str(result: peerlb_admin_result) -> *const c_char {
    match result {
        PEERLB_RESULT_SUCCESS => c"success".as_ptr(),
        PEERLB_RESULT_NO_ACTION_REQUIRED => c"no-action-required".as_ptr(),
        PEERLB_RESULT_FAILED => c"failed".as_ptr(),
        _ => c"unknown".as_ptr(),
    }
}
