//! List options: `peerlb_list_options_new`, the `peerlb_list_options_set_*` setters and
//! `peerlb_list_options_free`.

use std::ffi::c_char;

use peerlb::ListOptions;

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle::{self, Handle, Owned};

/// Options for `peerlb_list_new`, built with `peerlb_list_options_new` and the
/// `peerlb_list_options_set_*` setters.
///
/// Ownership: the caller frees it with `peerlb_list_options_free`; `peerlb_list_new` copies
/// what it needs, so options may be freed (or reused) right after.
/// Thread safety: not synchronized; use one from one thread at a time.
pub struct peerlb_list_options {
    _private: [u8; 0],
}

/// What a `peerlb_list_options` handle holds.
#[derive(Clone, Default)]
pub(crate) struct Options {
    /// The core's options.
    pub(crate) list: ListOptions,
    /// A built-in transport by spec (`peerlb_list_options_set_transport`), built per list.
    pub(crate) transport_spec: Option<String>,
}

impl Handle for peerlb_list_options {
    type Target = Options;
    type Ownership = Owned;
    const NAME: &'static str = "options";
}

/// Creates options with the core's defaults: strategy `round-robin`, shuffle on, seed from
/// the OS, fail-fast off, always-available transport, outlier ejection on with the default
/// policy (`peerlb_list_options_set_ejection`), the real clock.
///
/// Ownership: the caller frees `*out` with `peerlb_list_options_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `out` is NULL.
///
/// # Safety
/// `out` must be writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_new(
    out: *mut *mut peerlb_list_options,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { handle::out(out, "out") }?;
        out.write(handle::into_raw(Options::default()));
        Ok(())
    })
}

/// Frees options. NULL is ignored.
///
/// Ownership: takes `opts` back; lists made from it keep their own copy.
///
/// # Safety
/// `opts` must be NULL or from `peerlb_list_options_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_free(opts: *mut peerlb_list_options) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(opts) }
}

/// Applies `f` to the options behind `opts`; they are left unchanged when `f` fails.
///
/// # Safety
/// `opts` must be NULL or live options.
pub(crate) unsafe fn with_options(
    opts: *mut peerlb_list_options,
    f: impl FnOnce(ListOptions) -> Result<ListOptions, peerlb::Error>,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let opts = unsafe { handle::borrow_mut(opts) }?;
        opts.list = f(opts.list.clone())?;
        Ok(())
    })
}

/// Sets the strategy by its spec string, parsed by the core:
/// `name[:mode][?key=value[&key=value...]]` with the names `"round-robin"`, `"random"`,
/// `"fewest-pending"`, `"two-random-choices"`, `"hash-ring"` (modes `ketama`, `fast`),
/// `"maglev"`, `"weighted-round-robin"` and `"peak-ewma"`, e.g.
/// `"hash-ring:ketama?bounded=1.25"` (the keys of each are in the README). Introspection
/// reports the full spec. The string is NUL-terminated and copied.
///
/// Ownership: borrows both arguments for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, non-UTF-8, an unknown name, mode
/// or key, or a bad value (the options are then unchanged).
///
/// # Safety
/// `opts` live options or NULL; `name` a NUL-terminated string or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_strategy(
    opts: *mut peerlb_list_options,
    name: *const c_char,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_options(opts, |o| {
            o.strategy_name(handle::c_str(name, "strategy name")?)
        })
    }
}

/// Selects a built-in transport by its spec string: `"always-available"` (the default) or
/// `"tcp-probe"` with options, e.g. `"tcp-probe?interval_ms=200&timeout_ms=100"` (keys
/// `interval_ms`, `timeout_ms`, `healthy_threshold`, `unhealthy_threshold`; the core's
/// defaults for those not given). Every list made from these options gets its own
/// transport. Passing a vtable to `peerlb_list_new` as well is an error.
///
/// Ownership: borrows both arguments for the call; the spec is copied.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, non-UTF-8, an unknown transport or
/// a bad option (the options are then unchanged).
///
/// # Safety
/// `opts` live options or NULL; `spec` a NUL-terminated string or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_transport(
    opts: *mut peerlb_list_options,
    spec: *const c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (opts, spec) = unsafe {
            (
                handle::borrow_mut(opts)?,
                handle::c_str(spec, "transport spec")?,
            )
        };
        peerlb::transport_from_spec(spec)?; // validate now
        opts.transport_spec = Some(spec.to_owned());
        Ok(())
    })
}

/// Whether to shuffle peers as they are retained (default true).
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_shuffle(
    opts: *mut peerlb_list_options,
    shuffle: bool,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.shuffle(shuffle))) }
}

/// Seeds shuffling and random strategies, for reproducible runs (default: from the OS).
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_seed(
    opts: *mut peerlb_list_options,
    seed: u64,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.seed(seed))) }
}

/// Makes `peerlb_list_choose` fail at once with `PEERLB_NO_PEER_AVAILABLE` instead of
/// waiting for a peer (default false).
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_fail_fast(
    opts: *mut peerlb_list_options,
    fail_fast: bool,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.fail_fast(fail_fast))) }
}

/// The expected number of peers (default 0). Only a hint for pre-sizing: any value is
/// accepted, the core pre-sizes for at most 65 536 peers and the list grows as peers come.
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_capacity(
    opts: *mut peerlb_list_options,
    capacity: usize,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.capacity(capacity))) }
}

/// The zone this client runs in: turns on Envoy's zone-aware routing inside each priority
/// level (peers carry their zone in `peerlb_peer_spec.zone`). While the local zone has at
/// least its share of a level's healthy peers, every request of that level stays in it;
/// otherwise it gets what it can take and the other zones share the rest by their spare
/// capacity. NUL-terminated, copied; an empty string means none (the default). An
/// over-long zone fails `peerlb_list_new`.
///
/// Ownership: borrows both arguments for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or non-UTF-8.
///
/// # Safety
/// `opts` live options or NULL; `zone` a NUL-terminated string or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_local_zone(
    opts: *mut peerlb_list_options,
    zone: *const c_char,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_options(opts, |o| {
            Ok(o.local_zone(handle::c_str(zone, "local zone")?))
        })
    }
}

/// Below this many healthy peers in a priority level, zone-aware routing is off for that
/// level (Envoy's `min_cluster_size`; the core's default is 6).
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_min_cluster_size(
    opts: *mut peerlb_list_options,
    peers: usize,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.min_cluster_size(peers))) }
}

/// Envoy's overprovisioning factor for priority load (the core's default is 1.4): a level
/// counts as fully healthy while `factor × healthy share >= 100 %`. A number in 1..=100;
/// anything else (NaN, infinities) fails `peerlb_list_new` with `PEERLB_INVALID_ARGUMENT`.
///
/// Ownership: borrows `opts` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_overprovisioning_factor(
    opts: *mut peerlb_list_options,
    factor: f64,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.overprovisioning_factor(factor))) }
}
