//! `peerlb_upstream_*`: the score-based list of backends (core `peerlb::Upstream`).

use std::ffi::{c_char, c_int, c_void, CString};
use std::time::Duration;

use peerlb::{HealthCheck, Upstream, UpstreamOptions};

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle::{self, CallerOwned, Handle, Owned};
use crate::list::{peer_ids, peerlb_peer_id};

/// A score-based list of backends with health checks.
///
/// Ownership: made by `peerlb_upstream_new`, freed with `peerlb_upstream_free`.
/// Thread safety: every function except `peerlb_upstream_free` may be called from any
/// number of threads at once.
pub struct peerlb_upstream {
    _private: [u8; 0],
}

impl Handle for peerlb_upstream {
    type Target = Upstream;
    type Ownership = Owned;
    const NAME: &'static str = "upstream";
}

/// Options of an upstream; fill them with `peerlb_upstream_options_default` (the core's
/// defaults) first, then change what you need.
///
/// Ownership: the caller's; read during `peerlb_upstream_new` only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct peerlb_upstream_options {
    /// Milliseconds between health-check rounds (default 1000); 0 = no background checks
    /// (rounds only through `peerlb_upstream_check_now`).
    pub health_check_interval_ms: u64,
    /// Milliseconds one check may take before it counts as failed (default 100).
    pub health_check_timeout_ms: u64,
    /// Score of a new backend (default 1).
    pub initial_score: f64,
    /// Lowest score, <= 0 (default -3).
    pub low_score: f64,
    /// Highest score, >= 0 and >= low_score (default 3).
    pub high_score: f64,
    /// Added on a failed check or `down`, < 0 (default -1).
    pub fail_delta: f64,
    /// Added on a good check or `up`, > 0 (default 1).
    pub success_delta: f64,
}

impl Handle for peerlb_upstream_options {
    type Target = peerlb_upstream_options;
    type Ownership = CallerOwned;
    const NAME: &'static str = "options";
}

impl From<UpstreamOptions> for peerlb_upstream_options {
    fn from(o: UpstreamOptions) -> Self {
        peerlb_upstream_options {
            health_check_interval_ms: o.health_check_interval.map_or(0, |d| d.as_millis() as u64),
            health_check_timeout_ms: o.health_check_timeout.as_millis() as u64,
            initial_score: o.initial_score,
            low_score: o.low_score,
            high_score: o.high_score,
            fail_delta: o.fail_delta,
            success_delta: o.success_delta,
        }
    }
}

impl From<&peerlb_upstream_options> for UpstreamOptions {
    fn from(o: &peerlb_upstream_options) -> Self {
        UpstreamOptions {
            health_check_interval: match o.health_check_interval_ms {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            health_check_timeout: Duration::from_millis(o.health_check_timeout_ms),
            initial_score: o.initial_score,
            low_score: o.low_score,
            high_score: o.high_score,
            fail_delta: o.fail_delta,
            success_delta: o.success_delta,
        }
    }
}

/// A health check written in C. `check` returns 0 when `backend` (`len` bytes, also
/// NUL-terminated) is healthy, anything else when not. It runs on a library thread with no
/// lock held, may block (a check still running after the timeout counts as failed and the
/// backend is not checked again until it returns) and may call back into the upstream.
/// `free_userdata` (may be NULL) runs once, after the last check returned, when the
/// upstream was freed.
///
/// Ownership: copied by `peerlb_upstream_new`; `userdata` belongs to the upstream from a
/// successful `peerlb_upstream_new` on (a failed one leaves it to the caller).
#[repr(C)]
pub struct peerlb_health_check_vtable {
    /// Passed to the callbacks.
    pub userdata: *mut c_void,
    /// The check.
    pub check: Option<unsafe extern "C" fn(*mut c_void, *const c_char, usize) -> c_int>,
    /// Frees `userdata`; may be NULL.
    pub free_userdata: Option<unsafe extern "C" fn(*mut c_void)>,
}

impl Handle for peerlb_health_check_vtable {
    type Target = peerlb_health_check_vtable;
    type Ownership = CallerOwned;
    const NAME: &'static str = "health-check vtable";
}

struct CCheck {
    userdata: *mut c_void,
    check: unsafe extern "C" fn(*mut c_void, *const c_char, usize) -> c_int,
    free_userdata: Option<unsafe extern "C" fn(*mut c_void)>,
}

// SAFETY: the vtable's documented contract is that its callbacks may be called from any
// thread (they run on library threads).
unsafe impl Send for CCheck {}
// SAFETY: as above.
unsafe impl Sync for CCheck {}

impl CCheck {
    fn run(&self, backend: &str) -> Result<(), String> {
        let c = CString::new(backend).map_err(|_| "backend contains NUL".to_owned())?;
        // SAFETY: the vtable's contract; the id is valid for the call.
        let rc = unsafe { (self.check)(self.userdata, c.as_ptr(), backend.len()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("check returned {rc}"))
        }
    }
}

impl Drop for CCheck {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            // SAFETY: the vtable's contract: called once, after the last check.
            unsafe { free(self.userdata) };
        }
    }
}

/// Fills `*out` with the core's default options.
///
/// Ownership: `*out` is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `out` is NULL.
///
/// # Safety
/// `out` writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_options_default(
    out: *mut peerlb_upstream_options,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { handle::out(out, "out") }?.write(UpstreamOptions::default().into());
        Ok(())
    })
}

/// Reads `n` backend ids, each checked by the core's peer id rule (1..=1024 bytes of
/// UTF-8, no NUL); a bad one fails them all.
///
/// # Safety
/// `backends` NULL (with `n == 0`) or readable for `n` ids, each readable for its length.
unsafe fn backend_ids(
    backends: *const peerlb_peer_id,
    n: usize,
) -> Result<Vec<String>, peerlb::Error> {
    // SAFETY: forwarded contract.
    let ids = unsafe { peer_ids(backends, n, "backends") }?;
    // The core checks each id (`Upstream::new`, `Upstream::reconcile`).
    Ok(ids.into_iter().map(str::to_owned).collect())
}

/// Creates an upstream of `n` backends (each with the initial score, in this order) and
/// starts its health checks (unless `health_check_interval_ms` is 0). `opts` NULL means the
/// defaults; `check` NULL means the built-in TCP probe (a backend is healthy while
/// `host:port` accepts a connection).
///
/// Ownership: free `*out` with `peerlb_upstream_free`. On success the upstream owns
/// `check->userdata`; on failure nothing was taken.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL `out`, NULL/bad ids, bad options (see
/// `peerlb_upstream_options`), or a vtable without `check`.
///
/// # Safety
/// `backends` readable for `n` ids (or NULL with `n == 0`); `opts`, `check` NULL or valid;
/// `out` writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_new(
    backends: *const peerlb_peer_id,
    n: usize,
    opts: *const peerlb_upstream_options,
    check: *const peerlb_health_check_vtable,
    out: *mut *mut peerlb_upstream,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (out, ids) = unsafe { (handle::out(out, "out")?, backend_ids(backends, n)?) };
        // SAFETY: forwarded contract.
        let options: UpstreamOptions = match unsafe { handle::borrow_optional(opts) } {
            Some(o) => o.into(),
            None => UpstreamOptions::default(),
        };
        // Validated before the vtable is taken, so a failure takes nothing.
        options.validate()?;
        // SAFETY: forwarded contract.
        let hc = match unsafe { handle::borrow_optional(check) } {
            None => HealthCheck::TcpProbe,
            Some(v) => {
                let f = handle::required(v.check, "the health-check vtable's check callback")?;
                let c = CCheck {
                    userdata: v.userdata,
                    check: f,
                    free_userdata: v.free_userdata,
                };
                HealthCheck::blocking(move |b| c.run(b))
            }
        };
        out.write(handle::into_raw(Upstream::new(ids, hc, options)?));
        Ok(())
    })
}

/// Shuts the upstream down and frees it. NULL is ignored. `check->free_userdata` runs
/// once no check is running any more (possibly later, on a library thread).
///
/// Ownership: takes `up` back.
///
/// # Safety
/// `up` NULL or from `peerlb_upstream_new`, not yet freed, not in use by other threads.
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_free(up: *mut peerlb_upstream) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(up) }
}

/// The next backend with a score >= 0, round-robin: a NUL-terminated copy in `*out`.
///
/// Ownership: the caller frees `*out` with `peerlb_string_free`.
/// Errors: `PEERLB_NO_PEER_AVAILABLE` when no backend has a score >= 0;
/// `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `up` NULL or live; `out` writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_pick(
    up: *const peerlb_upstream,
    out: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (u, out) = unsafe { (handle::borrow(up)?, handle::out(out, "out")?) };
        out.write(handle::string_out(u.pick()?));
        Ok(())
    })
}

/// `up` (success) or `down`.
///
/// # Safety
/// As for `peerlb_upstream_up`.
unsafe fn move_score(
    up: *const peerlb_upstream,
    id: *const c_char,
    len: usize,
    success: bool,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (u, id) = unsafe { (handle::borrow(up)?, handle::str_at(id, len, "backend id")?) };
        if success {
            u.up(id)
        } else {
            u.down(id)
        }
        Ok(())
    })
}

/// Moves backend `id`'s score up by the success delta (capped at the high score). An
/// unknown backend is ignored.
///
/// Ownership: borrows every argument for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or a non-UTF-8 id.
///
/// # Safety
/// `up` NULL or live; `id` NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_up(
    up: *const peerlb_upstream,
    id: *const c_char,
    len: usize,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { move_score(up, id, len, true) }
}

/// Moves backend `id`'s score down by the fail delta (capped at the low score). An
/// unknown backend is ignored.
///
/// Ownership: borrows every argument for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or a non-UTF-8 id.
///
/// # Safety
/// `up` NULL or live; `id` NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_down(
    up: *const peerlb_upstream,
    id: *const c_char,
    len: usize,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { move_score(up, id, len, false) }
}

/// Replaces the backends: those that stay keep their score, new ones get the initial
/// score. A malformed call (NULL array or id, bad id) changes nothing.
///
/// Ownership: the array and ids are the caller's, read during the call (ids are copied).
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or bad ids.
///
/// # Safety
/// `up` NULL or live; `backends` readable for `n` ids (or NULL with `n == 0`).
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_reconcile(
    up: *const peerlb_upstream,
    backends: *const peerlb_peer_id,
    n: usize,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (u, ids) = unsafe { (handle::borrow(up)?, backend_ids(backends, n)?) };
        u.reconcile(ids)
    })
}

/// The score of backend `id` in `*score`.
///
/// Ownership: borrows every argument for the call; `*score` is the caller's.
/// Errors: `PEERLB_PEER_NOT_IN_LIST` for an unknown backend; `PEERLB_INVALID_ARGUMENT`
/// for NULL arguments or a non-UTF-8 id.
///
/// # Safety
/// `up` NULL or live; `id` NULL or readable for `len` bytes; `score` writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_score(
    up: *const peerlb_upstream,
    id: *const c_char,
    len: usize,
    score: *mut f64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (u, id, score) = unsafe {
            (
                handle::borrow(up)?,
                handle::str_at(id, len, "backend id")?,
                handle::out(score, "score")?,
            )
        };
        let s = u
            .score(id)
            .ok_or_else(|| peerlb::Error::PeerNotInList(id.to_owned()))?;
        score.write(s);
        Ok(())
    })
}

/// Runs one health-check round now and returns when it is over (every check ended or
/// timed out). Do not call it from inside a health-check callback.
///
/// Ownership: borrows `up` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `up` is NULL.
///
/// # Safety
/// `up` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_check_now(up: *const peerlb_upstream) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { handle::borrow(up) }?.check_now();
        Ok(())
    })
}

/// Stops the health checks; pick/up/down/reconcile keep working. Repeating it is fine.
///
/// Ownership: borrows `up` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `up` is NULL.
///
/// # Safety
/// `up` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_upstream_shutdown(up: *const peerlb_upstream) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { handle::borrow(up) }?.shutdown();
        Ok(())
    })
}
