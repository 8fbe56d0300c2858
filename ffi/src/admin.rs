//! Backend administration: disable, enable, reset and delete one peer of a list.

use std::ffi::c_char;

use peerlb::admin::AdminOp;
use peerlb::AdminResult;

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle;
use crate::list::peerlb_list;

/// What an admin operation did (one of the `PEERLB_ADMIN_*` values). A *failed* operation
/// is a non-OK `peerlb_status` instead (with `peerlb_last_error_message()`).
#[allow(non_camel_case_types)]
pub type peerlb_admin_result = u32;
/// The operation changed the peer's state.
pub const PEERLB_ADMIN_SUCCESS: peerlb_admin_result = 0;
/// The peer was already in the requested state; nothing changed.
pub const PEERLB_ADMIN_NO_ACTION_REQUIRED: peerlb_admin_result = 1;

fn to_c(result: AdminResult) -> peerlb_admin_result {
    match result {
        AdminResult::Success => PEERLB_ADMIN_SUCCESS,
        AdminResult::NoActionRequired => PEERLB_ADMIN_NO_ACTION_REQUIRED,
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
        let (list, id, result) = unsafe {
            (
                handle::borrow(list)?,
                handle::str_at(id, len, "id")?,
                handle::out(result, "result")?,
            )
        };
        result.write(to_c(list.admin(op, id)?));
        Ok(())
    })
}

/// Admin: no new requests go to peer `id` (`len` bytes of UTF-8); requests in flight
/// finish normally. It stays disabled across updates, even if it is removed and added
/// again, until `peerlb_list_enable` or `peerlb_list_delete`. Subscribers get
/// `PEERLB_EVENT_DISABLED`.
///
/// `*result` is `PEERLB_ADMIN_SUCCESS`, or `PEERLB_ADMIN_NO_ACTION_REQUIRED` when it was
/// disabled already.
/// Errors (*failed*; `*result` untouched): `PEERLB_INVALID_ARGUMENT` (NULL arguments,
/// non-UTF-8, empty or over-long id), `PEERLB_PEER_NOT_IN_LIST`.
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
/// `*result` is `PEERLB_ADMIN_SUCCESS`, or `PEERLB_ADMIN_NO_ACTION_REQUIRED` when it was
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
/// `*result` is `PEERLB_ADMIN_SUCCESS`, or `PEERLB_ADMIN_NO_ACTION_REQUIRED` when it had
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
/// `*result` is `PEERLB_ADMIN_SUCCESS`.
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

/// The name of an admin result: `"success"`, `"no-action-required"`, or `"unknown"` for
/// any other value.
///
/// Ownership: a static string; never free it. Never NULL. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn peerlb_admin_result_str(result: peerlb_admin_result) -> *const c_char {
    match result {
        PEERLB_ADMIN_SUCCESS => c"success".as_ptr(),
        PEERLB_ADMIN_NO_ACTION_REQUIRED => c"no-action-required".as_ptr(),
        _ => c"unknown".as_ptr(),
    }
}
