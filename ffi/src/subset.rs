//! Deterministic subsetting (see the core's `peerlb::subset`).

use std::ffi::c_char;

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle;
use crate::list::{peer_ids, peerlb_peer_id};

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
