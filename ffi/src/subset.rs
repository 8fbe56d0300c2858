//! Deterministic subsetting (see the core's `peerlb::subset`): the function, and the list
//! options `peerlb_list_options_set_subset` and `peerlb_list_options_set_subset_client`.

use std::ffi::c_char;

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle;
use crate::list::{peer_ids, peerlb_peer_id};
use crate::options::{peerlb_list_options, with_options};

/// Which `size` of the `n` backends client `client` connects to (Google SRE's deterministic
/// subsetting, with rounds ordered by hash so that one backend more or less moves at most
/// one in and one out per client): `*json` gets a JSON array of backend ids. Every backend
/// when `size` is 0 or at least their number; duplicates count once; the order of
/// `backends` does not matter.
///
/// Ownership: the caller frees `*json` with `peerlb_string_free`; `backends` is read during
/// the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL `json`, a NULL array with a non-zero
/// count, a NULL id with a length, or an id that is not UTF-8.
///
/// # Safety
/// `backends` NULL or readable for `n` ids, each readable for its length; `json` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_deterministic_subset(
    backends: *const peerlb_peer_id,
    n: usize,
    client: u64,
    size: usize,
    json: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (ids, json) = unsafe {
            (
                peer_ids(backends, n, "backends")?,
                handle::out(json, "json")?,
            )
        };
        let subset = peerlb::subset::deterministic_subset(&ids, client, size);
        json.write(handle::string_out(
            serde_json::to_string(&subset).expect("strings serialize"),
        ));
        Ok(())
    })
}

/// Deterministic subsetting as a list option: the list retains only `size` of the peers it
/// is offered, those `peerlb_deterministic_subset` answers for the offered ids, the client
/// id of `peerlb_list_options_set_subset_client` and `size`. 0 is off (the default). Every
/// `peerlb_list_update` then names changes of the offered set (its errors are about that
/// set) and the list retains the new subset in the same step; `peerlb_list_introspect`
/// shows `"subset":{"size":..,"client":..,"offered":..}` (`total` counts the retained
/// peers). A size of 1 or more without a client id (or a client id without a size) makes
/// `peerlb_list_new` fail with `PEERLB_INVALID_ARGUMENT`.
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_subset(
    opts: *mut peerlb_list_options,
    size: usize,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.subset(size))) }
}

/// This client's id for `peerlb_list_options_set_subset`: clients with different ids get
/// different, evenly spread subsets (give each client of a service its own, counting from 0).
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_subset_client(
    opts: *mut peerlb_list_options,
    client: u64,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.subset_client(client))) }
}
