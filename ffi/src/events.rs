//! Peer events: a C callback subscribed to a list's events (added, removed, available,
//! unavailable, ejected, restored, disabled, enabled).

use std::ffi::{c_char, c_void, CString};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use peerlb::{EventKind, PeerEvent, Subscription};

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle::{self, Handle, Owned};
use crate::list::peerlb_list;

/// What happened to a peer (one of the `PEERLB_EVENT_*` values; later versions may add
/// values, so handle unknown ones).
#[allow(non_camel_case_types)]
pub type peerlb_event_kind = u32;
/// It joined the list (`peerlb_list_update` addition).
pub const PEERLB_EVENT_ADDED: peerlb_event_kind = 1;
/// It left the list (`peerlb_list_update` removal or `peerlb_list_delete`).
pub const PEERLB_EVENT_REMOVED: peerlb_event_kind = 2;
/// It can be chosen again: its transport reported it available (also when the list
/// starts and retains it).
pub const PEERLB_EVENT_AVAILABLE: peerlb_event_kind = 3;
/// Its transport reported it unavailable or connecting after it was available, or the
/// list stopped.
pub const PEERLB_EVENT_UNAVAILABLE: peerlb_event_kind = 4;
/// Outlier ejection took it out of rotation after consecutive failures (`detail` says
/// how many and for how long).
pub const PEERLB_EVENT_EJECTED: peerlb_event_kind = 5;
/// Its ejection time ran out, or `peerlb_list_reset` cleared it.
pub const PEERLB_EVENT_RESTORED: peerlb_event_kind = 6;
/// `peerlb_list_disable` took it out of rotation.
pub const PEERLB_EVENT_DISABLED: peerlb_event_kind = 7;
/// `peerlb_list_enable` put it back.
pub const PEERLB_EVENT_ENABLED: peerlb_event_kind = 8;

fn kind_to_c(kind: EventKind) -> peerlb_event_kind {
    match kind {
        EventKind::Added => PEERLB_EVENT_ADDED,
        EventKind::Removed => PEERLB_EVENT_REMOVED,
        EventKind::Available => PEERLB_EVENT_AVAILABLE,
        EventKind::Unavailable => PEERLB_EVENT_UNAVAILABLE,
        EventKind::Ejected => PEERLB_EVENT_EJECTED,
        EventKind::Restored => PEERLB_EVENT_RESTORED,
        EventKind::Disabled => PEERLB_EVENT_DISABLED,
        EventKind::Enabled => PEERLB_EVENT_ENABLED,
    }
}

/// One event, passed to a `peerlb_event_callback`.
///
/// Ownership: borrowed; the struct and its strings are valid only until the callback
/// returns (copy what you keep).
#[repr(C)]
pub struct peerlb_event {
    /// What happened (`PEERLB_EVENT_*`).
    pub kind: peerlb_event_kind,
    /// The peer's id: `peer_len` bytes of UTF-8, also NUL-terminated.
    pub peer: *const c_char,
    /// Length of `peer` in bytes.
    pub peer_len: usize,
    /// More about it for people (e.g. `"5 consecutive failures; ejected for 30s
    /// (ejection 1)"`), NUL-terminated; may be empty, never NULL.
    pub detail: *const c_char,
}

/// Called once per event, in the order of the changes, outside every lock of peerlb.
///
/// It usually runs on the thread whose call caused the event (an update, a finish that
/// ejects a peer, a transport's status report, `peerlb_manual_clock_advance_ms`) before
/// that call returns, or on a peerlb thread (an ejection ending on the real clock, a
/// tcp-probe report). When another thread is delivering this list's events at that moment,
/// that thread delivers it instead, after the causing call may have returned. One event is
/// delivered at a time per list, so a callback never runs twice at once for one list. It may call back into
/// the list (its own events are then delivered after it returns) and may free its own
/// subscription; it must not free the list, and must not unwind (C++ exceptions,
/// `longjmp`) through peerlb.
#[allow(non_camel_case_types)]
pub type peerlb_event_callback =
    Option<unsafe extern "C" fn(event: *const peerlb_event, user_data: *mut c_void)>;

/// A subscription to a list's events, from `peerlb_list_subscribe` (or to its session
/// events, from `peerlb_list_subscribe_sessions`).
///
/// Ownership: the caller frees it with `peerlb_subscription_free` (before or after the
/// list: either order is fine). Thread safety: free it once, from any thread.
pub struct peerlb_subscription {
    _private: [u8; 0],
}

/// What a `peerlb_subscription` points to. Dropping it unsubscribes, after waiting for a
/// callback running on another thread.
pub(crate) struct SubscriptionHandle {
    shared: Arc<dyn Cancel>,
    inner: Option<Subscription>,
}

impl SubscriptionHandle {
    /// A handle for C owning `inner`, whose callback wrapper is `shared`.
    pub(crate) fn into_c(shared: Arc<dyn Cancel>, inner: Subscription) -> *mut peerlb_subscription {
        handle::into_raw(SubscriptionHandle {
            shared,
            inner: Some(inner),
        })
    }
}

/// Stops a callback wrapper: no call starts after `cancel`, which waits for a running one.
pub(crate) trait Cancel: Send + Sync {
    fn cancel(&self);
}

impl Handle for peerlb_subscription {
    type Target = SubscriptionHandle;
    type Ownership = Owned;
    const NAME: &'static str = "subscription";
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        self.shared.cancel();
        drop(self.inner.take());
    }
}

/// The C callback type of peer events.
type EventFn = unsafe extern "C" fn(*const peerlb_event, *mut c_void);

/// What the callback wrapper and the subscription handle share: the C callback (of type
/// `F`), and whether (and on which thread) it is running, so freeing waits for a running
/// callback.
pub(crate) struct Shared<F> {
    callback: F,
    user_data: *mut c_void,
    state: Mutex<State>,
    idle: Condvar,
}

#[derive(Default)]
struct State {
    cancelled: bool,
    running: Option<ThreadId>,
}

// SAFETY: the callback's contract (peerlb_list_subscribe, peerlb_list_subscribe_sessions)
// is that it may be called from any thread; user_data is only ever handed back to it.
unsafe impl<F: Send> Send for Shared<F> {}
// SAFETY: as above; calls are serialized by `state`.
unsafe impl<F: Sync> Sync for Shared<F> {}

impl<F: Copy> Shared<F> {
    /// A wrapper of `callback` with `user_data`.
    pub(crate) fn new(callback: F, user_data: *mut c_void) -> Shared<F> {
        Shared {
            callback,
            user_data,
            state: Mutex::new(State::default()),
            idle: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `call` with the callback and its user data, unless cancelled; freeing the
    /// subscription meanwhile waits until it returns.
    pub(crate) fn call(&self, call: impl FnOnce(F, *mut c_void)) {
        {
            let mut state = self.lock();
            if state.cancelled {
                return;
            }
            state.running = Some(thread::current().id());
        }
        // Marks the callback finished even if building the event panics.
        struct Done<'a, F: Copy>(&'a Shared<F>);
        impl<F: Copy> Drop for Done<'_, F> {
            fn drop(&mut self) {
                self.0.lock().running = None;
                self.0.idle.notify_all();
            }
        }
        let _done = Done(self);
        call(self.callback, self.user_data);
    }
}

impl Shared<EventFn> {
    fn deliver(&self, event: &PeerEvent) {
        self.call(|callback, user_data| {
            let peer = CString::new(event.peer.as_str()).unwrap_or_default();
            let detail = CString::new(event.detail.replace('\0', "\\0")).unwrap_or_default();
            let c_event = peerlb_event {
                kind: kind_to_c(event.kind),
                peer: peer.as_ptr(),
                peer_len: peer.as_bytes().len(),
                detail: detail.as_ptr(),
            };
            // SAFETY: the callback follows peerlb_event_callback's contract; the event and
            // its strings live until it returns.
            unsafe { callback(&c_event, user_data) };
        });
    }
}

impl<F: Copy + Send + Sync> Cancel for Shared<F> {
    /// No call starts after this; waits for a running one unless it runs on this thread
    /// (a callback freeing its own subscription).
    fn cancel(&self) {
        let me = thread::current().id();
        let mut state = self.lock();
        state.cancelled = true;
        while state.running.is_some_and(|t| t != me) {
            state = self.idle.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Subscribes `callback` to the list's events; `user_data` is passed to every call.
///
/// Ownership: the caller frees `*out` with `peerlb_subscription_free`; `user_data` stays
/// the caller's and must stay valid until `peerlb_subscription_free` returns. After that
/// the callback is never called again, and is not running (unless the free was called from
/// inside the callback itself), so `user_data` may be freed then.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL list, callback or out.
/// Thread safety: any thread; see `peerlb_event_callback` for where callbacks run.
///
/// # Safety
/// `list` NULL or live; `out` NULL or writable; `callback` callable from any thread.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_subscribe(
    list: *const peerlb_list,
    callback: peerlb_event_callback,
    user_data: *mut c_void,
    out: *mut *mut peerlb_subscription,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let list = unsafe { handle::borrow(list) }?;
        let callback = handle::required(callback, "callback")?;
        // SAFETY: forwarded contract.
        let out = unsafe { handle::out(out, "out") }?;
        let shared = Arc::new(Shared::new(callback, user_data));
        let for_list = shared.clone();
        let inner = list.subscribe(move |event| for_list.deliver(event));
        out.write(SubscriptionHandle::into_c(shared, inner));
        Ok(())
    })
}

/// Unsubscribes and frees the subscription. When it returns, the callback is not running
/// and will not be called again (called from inside the callback itself, it returns at
/// once; the callback is then not called again after it returns). Do not call it while
/// holding a lock the callback takes: it waits for a callback running on another thread.
/// NULL is ignored.
///
/// Ownership: takes `subscription` back; `user_data` is the caller's again.
///
/// # Safety
/// `subscription` must be NULL or from `peerlb_list_subscribe`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_subscription_free(subscription: *mut peerlb_subscription) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(subscription) }
}

/// The name of an event kind: `"added"`, `"removed"`, `"available"`, `"unavailable"`,
/// `"ejected"`, `"restored"`, `"disabled"`, `"enabled"`, or `"unknown"` for any other
/// value.
///
/// Ownership: a static string; never free it. Never NULL. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn peerlb_event_kind_str(kind: peerlb_event_kind) -> *const c_char {
    match kind {
        PEERLB_EVENT_ADDED => c"added".as_ptr(),
        PEERLB_EVENT_REMOVED => c"removed".as_ptr(),
        PEERLB_EVENT_AVAILABLE => c"available".as_ptr(),
        PEERLB_EVENT_UNAVAILABLE => c"unavailable".as_ptr(),
        PEERLB_EVENT_EJECTED => c"ejected".as_ptr(),
        PEERLB_EVENT_RESTORED => c"restored".as_ptr(),
        PEERLB_EVENT_DISABLED => c"disabled".as_ptr(),
        PEERLB_EVENT_ENABLED => c"enabled".as_ptr(),
        _ => c"unknown".as_ptr(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_core() {
        for kind in EventKind::ALL {
            let c = kind_to_c(kind);
            assert_eq!(c, kind as u32);
            let name = unsafe { std::ffi::CStr::from_ptr(peerlb_event_kind_str(c)) };
            assert_eq!(name.to_str().unwrap(), kind.as_str());
        }
    }
}
