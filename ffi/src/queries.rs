//! yarpc's list queries: whether one peer is available or uninitialized, how many peers
//! are in each state, which peers are retained, and the list's capacity hint.

use std::ffi::c_char;

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle;
use crate::list::peerlb_list;

/// Whether peer `id` (`len` bytes of UTF-8) would be chosen now (retained, available,
/// enabled, not ejected), in `*available`; false for an id not in the list.
///
/// Ownership: borrows every argument for the call; the answer is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or a non-UTF-8 id.
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `available` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_available(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    available: *mut bool,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, id, out) = unsafe {
            (
                handle::borrow(list)?,
                handle::str_at(id, len, "id")?,
                handle::out(available, "available")?,
            )
        };
        out.write(list.available(id));
        Ok(())
    })
}

/// Whether peer `id` is in the list but not retained (added while the list was not
/// running), in `*uninitialized`; false for an id not in the list.
///
/// Ownership: borrows every argument for the call; the answer is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or a non-UTF-8 id.
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `uninitialized` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_uninitialized(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    uninitialized: *mut bool,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, id, out) = unsafe {
            (
                handle::borrow(list)?,
                handle::str_at(id, len, "id")?,
                handle::out(uninitialized, "uninitialized")?,
            )
        };
        out.write(list.uninitialized(id));
        Ok(())
    })
}

/// How many peers are in each state: `*available` would be chosen now, `*unavailable` are
/// retained but would not be (unavailable, connecting, disabled, ejected),
/// `*uninitialized` are not retained; they add up to the peer count. Any of the three may
/// be NULL (not wanted).
///
/// Ownership: borrows `list` for the call; the counts are the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL list.
///
/// # Safety
/// `list` NULL or live; the counts NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_counts(
    list: *const peerlb_list,
    available: *mut usize,
    unavailable: *mut usize,
    uninitialized: *mut usize,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let list = unsafe { handle::borrow(list) }?;
        // SAFETY: forwarded contract (each pointer NULL or writable).
        unsafe {
            if let Some(out) = handle::out_optional(available) {
                out.write(list.num_available());
            }
            if let Some(out) = handle::out_optional(unavailable) {
                out.write(list.num_unavailable());
            }
            if let Some(out) = handle::out_optional(uninitialized) {
                out.write(list.num_uninitialized());
            }
        }
        Ok(())
    })
}

/// The retained peers (available or not), in the order they were added, as a JSON array
/// of ids (`["a:1","b:1"]`; `[]` while the list is not running).
///
/// Ownership: the caller frees `*json` with `peerlb_string_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `list` NULL or live; `json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_peers(
    list: *const peerlb_list,
    json: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, json) = unsafe { (handle::borrow(list)?, handle::out(json, "json")?) };
        let ids: Vec<String> = list.peers().iter().map(|p| p.to_string()).collect();
        json.write(handle::string_out(
            serde_json::to_string(&ids).expect("ids serialize"),
        ));
        Ok(())
    })
}

/// The capacity hint the list was made with (`peerlb_list_options_set_capacity`; 10,
/// yarpc's default, when not set), in `*capacity`.
///
/// Ownership: borrows `list` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `list` NULL or live; `capacity` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_capacity(
    list: *const peerlb_list,
    capacity: *mut usize,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, out) = unsafe { (handle::borrow(list)?, handle::out(capacity, "capacity")?) };
        out.write(list.capacity());
        Ok(())
    })
}
