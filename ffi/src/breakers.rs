//! Circuit breakers (Envoy's): `peerlb_list_options_set_max_pending` and
//! `peerlb_list_options_set_max_pending_per_peer`.

use crate::error::peerlb_status;
use crate::options::{peerlb_list_options, with_options};

/// Circuit breaker for the list: with `limit` of its requests in flight,
/// `peerlb_list_choose` fails at once with `PEERLB_OVERLOADED` (whatever the timeout).
/// Off unless set. The core checks the value when the list is made: 0 makes
/// `peerlb_list_new` fail with `PEERLB_INVALID_ARGUMENT`.
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_max_pending(
    opts: *mut peerlb_list_options,
    limit: usize,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.max_pending(limit))) }
}

/// Circuit breaker per peer: a peer with `limit` requests in flight is not chosen (the
/// list asks its strategy for another); when every peer it tries is at the limit,
/// `peerlb_list_choose` fails at once with `PEERLB_OVERLOADED`. Off unless set; 0 makes
/// `peerlb_list_new` fail with `PEERLB_INVALID_ARGUMENT`.
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_max_pending_per_peer(
    opts: *mut peerlb_list_options,
    limit: usize,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.max_pending_per_peer(limit))) }
}
