//! Foreign transports: a vtable of C callbacks, and the subscriber handle they report
//! peer status through.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

use peerlb::{ConnectionStatus, PeerId, Subscriber, Transport, MAX_PEER_ID_LEN};

use crate::boundary::{guard, guard_value};
use crate::error::{invalid, peerlb_status};
use crate::handle::{self, CallerOwned, Handle, Owned};

/// A peer's connection status, as a C transport reports it (one of the
/// `PEERLB_CONNECTION_*` values; any other value is `PEERLB_INVALID_ARGUMENT`).
#[allow(non_camel_case_types)]
pub type peerlb_connection_status = u32;
/// Not reachable; never offered to a strategy. A peer's status until its transport
/// reports otherwise.
pub const PEERLB_CONNECTION_UNAVAILABLE: peerlb_connection_status = 0;
/// Being connected; not offered to a strategy yet.
pub const PEERLB_CONNECTION_CONNECTING: peerlb_connection_status = 1;
/// Ready for requests.
pub const PEERLB_CONNECTION_AVAILABLE: peerlb_connection_status = 2;

/// A C connection status as the core's; an unknown value is `invalid-argument`.
fn connection_status(value: peerlb_connection_status) -> Result<ConnectionStatus, peerlb::Error> {
    match value {
        PEERLB_CONNECTION_UNAVAILABLE => Ok(ConnectionStatus::Unavailable),
        PEERLB_CONNECTION_CONNECTING => Ok(ConnectionStatus::Connecting),
        PEERLB_CONNECTION_AVAILABLE => Ok(ConnectionStatus::Available),
        other => Err(invalid(format!(
            "unknown connection status {other}; expected PEERLB_CONNECTION_UNAVAILABLE (0), _CONNECTING (1) or _AVAILABLE (2)"
        ))),
    }
}

/// The core's connection status as a C value.
pub(crate) fn connection_status_to_c(status: ConnectionStatus) -> peerlb_connection_status {
    match status {
        ConnectionStatus::Unavailable => PEERLB_CONNECTION_UNAVAILABLE,
        ConnectionStatus::Connecting => PEERLB_CONNECTION_CONNECTING,
        ConnectionStatus::Available => PEERLB_CONNECTION_AVAILABLE,
    }
}

/// The handle through which a transport reports one peer's status to one list.
///
/// Two kinds exist, both used the same way:
///
/// * *borrowed*: the one `retain` and `release` receive. It is valid only until that
///   callback returns. Do not free it (`peerlb_subscriber_free` ignores it).
/// * *owned*: made by `peerlb_subscriber_clone`, valid until the caller passes it to
///   `peerlb_subscriber_free`, even after the peer was released or the list freed (reports
///   through it are then ignored). Keep one of these to report from another thread.
///
/// Thread safety: `peerlb_subscriber_set_status` may be called on the same subscriber from
/// any number of threads at once; `peerlb_subscriber_free` must not race with other uses of
/// the same owned handle.
pub struct peerlb_subscriber {
    _private: [u8; 0],
}

/// What a `peerlb_subscriber` points to.
pub(crate) struct SubscriberHandle {
    inner: Subscriber,
    /// Made by `peerlb_subscriber_clone` (a Box the caller frees), not lent to a callback.
    owned: bool,
}

impl Handle for peerlb_subscriber {
    type Target = SubscriberHandle;
    type Ownership = Owned;
    const NAME: &'static str = "subscriber";
}

/// The callbacks of a transport written in C (or any language with C function pointers).
///
/// peerlb calls `retain` when a list starts using a peer and `release` when it stops. The
/// transport reports the peer's status with `peerlb_subscriber_set_status`, from inside
/// `retain` (to give it a first status), or later from any thread (keep a
/// `peerlb_subscriber_clone` for that).
///
/// The callbacks may be called from any thread that calls into the list, never with a
/// lock of peerlb held, so they may call back into peerlb, including into the same list.
/// They must not unwind (C++ exceptions, `longjmp`) through peerlb.
///
/// Ownership: `peerlb_list_new` copies the vtable; `userdata` belongs to the list from a
/// successful `peerlb_list_new` on, and `free_userdata` (if not NULL) is called exactly
/// once, when the list is freed (after the last `release`). If `peerlb_list_new` fails,
/// `userdata` stays the caller's and `free_userdata` is not called. Note: if another
/// thread is inside `peerlb_subscriber_set_status` for this list at the moment the list is
/// freed, the final `release` calls and `free_userdata` run on that thread when its report
/// returns; so do not hold a lock that `release`/`free_userdata` take while calling
/// `peerlb_subscriber_set_status` (or stop the reporting threads before freeing the list).
#[repr(C)]
pub struct peerlb_transport_vtable {
    /// Passed as the first argument of every callback.
    pub userdata: *mut c_void,
    /// A short name for introspection (copied; NULL means `"c"`).
    pub name: *const c_char,
    /// Start tracking peer `id` (`len` bytes of UTF-8, also NUL-terminated; valid during the
    /// call). Return 0 (`PEERLB_OK`) on success; any other value fails the operation that
    /// retained the peer with `PEERLB_TRANSPORT_FAILED`, and the peer is not added.
    /// Required.
    pub retain: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            id: *const c_char,
            len: usize,
            subscriber: *const peerlb_subscriber,
        ) -> c_int,
    >,
    /// Stop tracking peer `id` for the subscriber given to `retain` (reports through it are
    /// ignored once this returns). Non-zero fails the operation with
    /// `PEERLB_TRANSPORT_FAILED`; the peer is released anyway. Required.
    pub release: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            id: *const c_char,
            len: usize,
            subscriber: *const peerlb_subscriber,
        ) -> c_int,
    >,
    /// Frees `userdata`; called once when the list is freed. May be NULL.
    pub free_userdata: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

impl Handle for peerlb_transport_vtable {
    type Target = peerlb_transport_vtable;
    type Ownership = CallerOwned;
    const NAME: &'static str = "transport vtable";
}

type Callback =
    unsafe extern "C" fn(*mut c_void, *const c_char, usize, *const peerlb_subscriber) -> c_int;

/// A [`Transport`] calling C function pointers.
pub(crate) struct CTransport {
    userdata: *mut c_void,
    name: String,
    retain: Callback,
    release: Callback,
    free_userdata: Option<unsafe extern "C" fn(*mut c_void)>,
    /// Whether `userdata` is ours to free: set once a list exists (a failed
    /// `peerlb_list_new` leaves it to the caller).
    owns_userdata: AtomicBool,
}

// SAFETY: the vtable's contract (documented on peerlb_transport_vtable) is that its callbacks
// may be called from any thread, and userdata is only ever handed back to them.
unsafe impl Send for CTransport {}
// SAFETY: as above; peerlb never touches userdata itself.
unsafe impl Sync for CTransport {}

impl CTransport {
    /// Reads and validates a vtable. Nothing is owned until this returns `Ok`.
    ///
    /// # Safety
    /// `vtable` must point to a valid vtable; `name`, if not NULL, to a NUL-terminated string.
    pub(crate) unsafe fn from_vtable(
        vtable: &peerlb_transport_vtable,
    ) -> Result<CTransport, peerlb::Error> {
        let retain = handle::required(vtable.retain, "the transport vtable's retain callback")?;
        let release = handle::required(vtable.release, "the transport vtable's release callback")?;
        let name = if vtable.name.is_null() {
            "c"
        } else {
            // SAFETY: forwarded contract.
            unsafe { handle::c_str(vtable.name, "the transport vtable's name") }?
        };
        Ok(CTransport {
            userdata: vtable.userdata,
            name: name.to_owned(),
            retain,
            release,
            free_userdata: vtable.free_userdata,
            owns_userdata: AtomicBool::new(false),
        })
    }

    /// From now on `userdata` belongs to this transport: `free_userdata` runs when it is
    /// dropped.
    pub(crate) fn adopt_userdata(&self) {
        self.owns_userdata.store(true, Ordering::Release);
    }

    fn call(
        &self,
        what: &str,
        f: Callback,
        id: &PeerId,
        subscriber: &Subscriber,
    ) -> Result<(), String> {
        // Hand C a NUL-terminated copy of the id (ids are at most 1024 bytes).
        let mut buf = [0u8; MAX_PEER_ID_LEN + 1];
        let bytes = id.as_str().as_bytes();
        buf[..bytes.len()].copy_from_slice(bytes);
        let sub = SubscriberHandle {
            inner: subscriber.clone(),
            owned: false,
        };
        let sub_ptr = std::ptr::from_ref(&sub).cast::<peerlb_subscriber>();
        // SAFETY: the vtable's contract; every pointer passed lives across the call.
        let rc = unsafe { f(self.userdata, buf.as_ptr().cast(), bytes.len(), sub_ptr) };
        if rc == 0 {
            Ok(())
        } else {
            let status = crate::error::peerlb_status_str(rc as u32);
            // SAFETY: peerlb_status_str returns a static NUL-terminated string.
            let status = unsafe { CStr::from_ptr(status) }.to_string_lossy();
            Err(format!(
                "the {:?} transport's {what} callback returned {rc} ({status})",
                self.name
            ))
        }
    }
}

impl Transport for CTransport {
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        self.call("retain", self.retain, id, subscriber)
    }

    fn release(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        self.call("release", self.release, id, subscriber)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for CTransport {
    fn drop(&mut self) {
        if !self.owns_userdata.load(Ordering::Acquire) {
            return;
        }
        if let Some(free) = self.free_userdata {
            // SAFETY: the vtable's contract: called exactly once, with its userdata.
            unsafe { free(self.userdata) };
        }
    }
}

/// Reports a peer's new connection status (`PEERLB_CONNECTION_*`).
///
/// Callable from any thread, at any time, including from inside `retain` (which is how a
/// transport gives a peer its first status). A report for a peer the list has released,
/// or for a list that was freed, is ignored: the call still returns `PEERLB_OK` and writes
/// `false` to `accepted`. `accepted` may be NULL.
///
/// Ownership: borrows `subscriber` for the call; `*accepted` is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL subscriber or an unknown status.
///
/// # Safety
/// `subscriber` must be a borrowed subscriber inside its callback or a live owned one;
/// `accepted` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_subscriber_set_status(
    subscriber: *const peerlb_subscriber,
    status: peerlb_connection_status,
    accepted: *mut bool,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let sub = unsafe { handle::borrow(subscriber) }?;
        let status = connection_status(status)?;
        // SAFETY: forwarded contract.
        let accepted = unsafe { handle::out_optional(accepted) };
        let taken = sub.inner.set_status(status);
        if let Some(accepted) = accepted {
            accepted.write(taken);
        }
        Ok(())
    })
}

/// Makes an owned copy of a subscriber (borrowed or owned) in `*out`, for reporting later
/// from any thread.
///
/// Ownership: the caller frees `*out` with `peerlb_subscriber_free`. The copy stays safe to
/// use after the peer is released and after the list is freed (its reports are ignored).
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL argument.
///
/// # Safety
/// `subscriber` must be valid (see `peerlb_subscriber`); `out` writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_subscriber_clone(
    subscriber: *const peerlb_subscriber,
    out: *mut *mut peerlb_subscriber,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (sub, out) = unsafe { (handle::borrow(subscriber)?, handle::out(out, "out")?) };
        out.write(handle::into_raw(SubscriberHandle {
            inner: sub.inner.clone(),
            owned: true,
        }));
        Ok(())
    })
}

/// Frees an owned subscriber from `peerlb_subscriber_clone`. NULL is ignored, and so is a
/// borrowed subscriber (the one a callback received).
///
/// Ownership: takes an owned `subscriber` back.
///
/// # Safety
/// `subscriber` must be NULL, a borrowed subscriber inside its callback, or an owned one
/// not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_subscriber_free(subscriber: *mut peerlb_subscriber) {
    guard_value((), || {
        // SAFETY: forwarded contract.
        if unsafe { handle::borrow_optional(subscriber) }.is_some_and(|s| s.owned) {
            // SAFETY: owned subscribers come from handle::into_raw in peerlb_subscriber_clone.
            unsafe { handle::free(subscriber) }
        }
    })
}
