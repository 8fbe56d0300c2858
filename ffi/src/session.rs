//! Sessions: long-lived connections bound to one peer, with failover
//! (`peerlb_session_*`), and the session listener (`peerlb_list_subscribe_sessions`).

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use peerlb::{Reason, Session, SessionEvent, SessionEventKind};

use crate::boundary::guard;
use crate::choice::{peerlb_request, request_from};
use crate::error::peerlb_status;
use crate::events::{peerlb_subscription, Shared, SubscriptionHandle};
use crate::handle::{self, Handle, Owned};
use crate::list::peerlb_list;

/// A session: a long-lived connection (a WebSocket, a TCP stream) bound to one peer of a
/// list, counting as one pending request on it while bound.
///
/// Ownership: made by `peerlb_session_open`, closed and freed by `peerlb_session_close`.
/// It keeps its list alive (a list freed meanwhile lives on until its sessions are
/// closed). Thread safety: every function taking a `peerlb_session` may be called from
/// any number of threads at once, except `peerlb_session_close`, which must be the last
/// use.
pub struct peerlb_session {
    _private: [u8; 0],
}

impl Handle for peerlb_session {
    type Target = Session;
    type Ownership = Owned;
    const NAME: &'static str = "session";
}

/// What happened to a session (one of the `PEERLB_SESSION_EVENT_*` values; later versions
/// may add values, so handle unknown ones).
#[allow(non_camel_case_types)]
pub type peerlb_session_event_kind = u32;
/// The session was bound to the peer: opened, or failed over to it (`reason` is
/// `"opened"` or `"failover"`).
pub const PEERLB_SESSION_EVENT_CREATED: peerlb_session_event_kind = 1;
/// The session's binding to the peer ended: failover (its reason), decline
/// (`"declined: <reason>"`) or close (`"closed"`).
pub const PEERLB_SESSION_EVENT_TERMINATED: peerlb_session_event_kind = 2;
/// An admin asked the session to move off the peer (`peerlb_list_failover`,
/// `peerlb_list_delete`, or the peer was removed).
pub const PEERLB_SESSION_EVENT_FAILOVER_REQUESTED: peerlb_session_event_kind = 3;

fn kind_to_c(kind: SessionEventKind) -> peerlb_session_event_kind {
    match kind {
        SessionEventKind::Created => PEERLB_SESSION_EVENT_CREATED,
        SessionEventKind::Terminated => PEERLB_SESSION_EVENT_TERMINATED,
        SessionEventKind::FailoverRequested => PEERLB_SESSION_EVENT_FAILOVER_REQUESTED,
    }
}

/// One session event, passed to a `peerlb_session_event_callback`.
///
/// Ownership: borrowed; the struct and its strings are valid only until the callback
/// returns (copy what you keep).
#[repr(C)]
pub struct peerlb_session_event {
    /// What happened (`PEERLB_SESSION_EVENT_*`).
    pub kind: peerlb_session_event_kind,
    /// The session's id (`peerlb_session_id`).
    pub session: u64,
    /// The peer's id: `peer_len` bytes of UTF-8, also NUL-terminated.
    pub peer: *const c_char,
    /// Length of `peer` in bytes.
    pub peer_len: usize,
    /// Why, for people (see the kinds), NUL-terminated; never NULL.
    pub reason: *const c_char,
}

/// Called once per session event, in the order of the changes, outside every lock of
/// peerlb, with the same delivery rules as `peerlb_event_callback`: one event at a time
/// per list, on the thread whose call caused it (or on the thread delivering the list's
/// session events at that moment); it may call back into the list and its sessions, may
/// free its own subscription, must not free the list and must not unwind through peerlb.
#[allow(non_camel_case_types)]
pub type peerlb_session_event_callback =
    Option<unsafe extern "C" fn(event: *const peerlb_session_event, user_data: *mut c_void)>;

type SessionEventFn = unsafe extern "C" fn(*const peerlb_session_event, *mut c_void);

fn deliver(shared: &Shared<SessionEventFn>, event: &SessionEvent) {
    shared.call(|callback, user_data| {
        let peer = CString::new(event.peer.as_str()).unwrap_or_default();
        let reason = handle::c_string(event.reason.clone());
        let c_event = peerlb_session_event {
            kind: kind_to_c(event.kind),
            session: event.session,
            peer: peer.as_ptr(),
            peer_len: peer.as_bytes().len(),
            reason: reason.as_ptr(),
        };
        // SAFETY: the callback follows peerlb_session_event_callback's contract; the event
        // and its strings live until it returns.
        unsafe { callback(&c_event, user_data) };
    });
}

/// Subscribes `callback` to the list's session events (created, terminated,
/// failover-requested); `user_data` is passed to every call.
///
/// Ownership: the caller frees `*out` with `peerlb_subscription_free` (the same rules as
/// `peerlb_list_subscribe`: when it returns the callback is not running and is never
/// called again). Errors: `PEERLB_INVALID_ARGUMENT` for a NULL list, callback or out.
///
/// # Safety
/// `list` NULL or live; `out` NULL or writable; `callback` callable from any thread.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_subscribe_sessions(
    list: *const peerlb_list,
    callback: peerlb_session_event_callback,
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
        let inner = list.subscribe_sessions(move |event| deliver(&for_list, event));
        out.write(SubscriptionHandle::into_c(shared, inner));
        Ok(())
    })
}

/// Opens a session: chooses a peer with `peerlb_list_choose`'s rules (waiting up to
/// `request->timeout_ms`; `request` may be NULL) and binds a new session to it. Session
/// subscribers get `PEERLB_SESSION_EVENT_CREATED`.
///
/// Ownership: the caller closes and frees `*out` with `peerlb_session_close`.
/// Errors: as `peerlb_list_choose` (`PEERLB_NOT_STARTED`, `PEERLB_TIMEOUT`,
/// `PEERLB_NO_DEADLINE`, `PEERLB_NO_PEER_AVAILABLE`, `PEERLB_INVALID_ARGUMENT`).
///
/// # Safety
/// `list` NULL or live; `request` NULL or valid; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_session_open(
    list: *const peerlb_list,
    request: *const peerlb_request,
    out: *mut *mut peerlb_session,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, out, request) = unsafe {
            (
                handle::borrow(list)?,
                handle::out(out, "out")?,
                request_from(request)?,
            )
        };
        let session = list.open_session_now(&request).wait()?;
        out.write(handle::into_raw(session));
        Ok(())
    })
}

/// The session's id in `*id`: unique within its list, counting from 1; it stays the same
/// across failovers.
///
/// Ownership: borrows `session` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `session` NULL or live; `id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_session_id(
    session: *const peerlb_session,
    id: *mut u64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (session, id) = unsafe { (handle::borrow(session)?, handle::out(id, "id")?) };
        id.write(session.id());
        Ok(())
    })
}

/// The peer the session is bound to (after a failed failover: the peer it left), as a new
/// NUL-terminated string in `*peer`.
///
/// Ownership: the caller frees `*peer` with `peerlb_string_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `session` NULL or live; `peer` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_session_peer(
    session: *const peerlb_session,
    peer: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (session, peer) = unsafe { (handle::borrow(session)?, handle::out(peer, "peer")?) };
        peer.write(handle::string_out(session.peer().to_string()));
        Ok(())
    })
}

/// Marks a successful exchange: the peer's failure streak ends, and the next failover
/// again prefers every peer but the current one.
///
/// Ownership: borrows `session` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` (NULL session), `PEERLB_ALREADY_FINISHED` (the
/// session was declined).
///
/// # Safety
/// `session` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_session_ok(session: *const peerlb_session) -> peerlb_status {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::borrow(session) }?.ok())
}

/// A reason from C: `reason` NUL-terminated (NULL: none; non-UTF-8 bytes replaced) and
/// the remote system's code (`remote_code` NULL: none).
///
/// # Safety
/// `reason` NULL or NUL-terminated; `remote_code` NULL or readable.
unsafe fn reason_from(
    reason: *const c_char,
    remote_code: *const i64,
) -> Result<Reason, peerlb::Error> {
    let text = if reason.is_null() {
        String::new()
    } else {
        // SAFETY: forwarded contract.
        unsafe { handle::c_str_lossy(reason, "reason") }?.into_owned()
    };
    // SAFETY: forwarded contract.
    Ok(match unsafe { remote_code.as_ref() } {
        Some(code) => Reason::new(text).with_code(*code),
        None => Reason::new(text),
    })
}

/// Fails the session over after an abnormal closure of its connection: its attempt ends
/// as a failure (it counts toward the peer's ejection), and it is bound to a *different*
/// available peer, preferring peers not tried since its last `peerlb_session_ok`, waiting
/// up to `request->timeout_ms` for one (`request` NULL: no deadline, so no waiting).
/// Session subscribers get `PEERLB_SESSION_EVENT_TERMINATED` (old peer, `reason`) then
/// `PEERLB_SESSION_EVENT_CREATED` (new peer). `reason` (NUL-terminated, may be NULL) and
/// `remote_code` (the remote system's code, e.g. a WebSocket close code; NULL: none)
/// describe the closure. On success `*peer` (when `peer` is not NULL) is the new peer's
/// id, a new string.
///
/// Ownership: the caller frees `*peer` with `peerlb_string_free`.
/// Errors: `PEERLB_NO_PEER_AVAILABLE` (no other peer now, without a deadline or on a
/// fail-fast list), `PEERLB_TIMEOUT`, `PEERLB_NOT_STARTED`; each names the peer left and
/// the code given (`peerlb_last_error_peer`, `peerlb_last_error_remote_code`), and leaves
/// the session open but bound to no peer (fail it over again, or close it).
/// `PEERLB_ALREADY_FINISHED` for a declined session; `PEERLB_INVALID_ARGUMENT` for a
/// NULL session.
///
/// # Safety
/// `session` NULL or live; `reason` NULL or NUL-terminated; `remote_code` NULL or
/// readable; `request` NULL or valid; `peer` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_session_failover(
    session: *const peerlb_session,
    reason: *const c_char,
    remote_code: *const i64,
    request: *const peerlb_request,
    peer: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (session, reason, request, peer) = unsafe {
            (
                handle::borrow(session)?,
                reason_from(reason, remote_code)?,
                request_from(request)?,
                handle::out_optional(peer),
            )
        };
        let new_peer = session.failover_now(reason, &request).wait()?;
        if let Some(out) = peer {
            out.write(handle::string_out(new_peer.to_string()));
        }
        Ok(())
    })
}

/// The peer declined the session on purpose (e.g. an authentication failure; `reason`
/// NUL-terminated or NULL, `remote_code` e.g. the HTTP status, NULL: none): the session
/// ends, with no retry, counting neither as a failure nor as a success for the peer.
/// Session subscribers get `PEERLB_SESSION_EVENT_TERMINATED`. The handle stays valid;
/// close it with `peerlb_session_close`.
///
/// Ownership: borrows every argument for the call (`reason` is copied).
/// Returns `PEERLB_DECLINED`, the session's final code, with `peerlb_last_error_message`,
/// `peerlb_last_error_peer` and `peerlb_last_error_remote_code` describing it;
/// `PEERLB_ALREADY_FINISHED` when the session had ended; `PEERLB_INVALID_ARGUMENT` for a
/// NULL session.
///
/// # Safety
/// `session` NULL or live; `reason` NULL or NUL-terminated; `remote_code` NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_session_decline(
    session: *const peerlb_session,
    reason: *const c_char,
    remote_code: *const i64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (session, reason) =
            unsafe { (handle::borrow(session)?, reason_from(reason, remote_code)?) };
        Err(session.decline(reason))
    })
}

/// Whether an admin asked the session to move off its peer (`peerlb_list_failover`,
/// `peerlb_list_delete`, a removal) since it was bound there, in `*requested`. Move it
/// with `peerlb_session_failover`; nothing moves it by itself.
///
/// Ownership: borrows `session` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `session` NULL or live; `requested` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_session_failover_requested(
    session: *const peerlb_session,
    requested: *mut bool,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (session, requested) = unsafe {
            (
                handle::borrow(session)?,
                handle::out(requested, "requested")?,
            )
        };
        requested.write(session.failover_requested());
        Ok(())
    })
}

/// Whether the session is open (`*open`: not declined) and bound to a peer now
/// (`*bound`: false after a failed failover); either pointer may be NULL.
///
/// Ownership: borrows `session` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL session.
///
/// # Safety
/// `session` NULL or live; `open`, `bound` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_session_state(
    session: *const peerlb_session,
    open: *mut bool,
    bound: *mut bool,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let session = unsafe { handle::borrow(session) }?;
        // SAFETY: as above.
        if let Some(out) = unsafe { handle::out_optional(open) } {
            out.write(session.is_open());
        }
        // SAFETY: as above.
        if let Some(out) = unsafe { handle::out_optional(bound) } {
            out.write(session.is_bound());
        }
        Ok(())
    })
}

/// Closes the session normally (its attempt ends as ok; subscribers get
/// `PEERLB_SESSION_EVENT_TERMINATED`, reason `"closed"`) and frees the handle, in every
/// case: `PEERLB_OK`, or `PEERLB_ALREADY_FINISHED` when it had ended already (declined;
/// the handle is freed all the same). A failover waiting on another thread ends with
/// `PEERLB_ALREADY_FINISHED`, but the handle must not be closed while another call uses it.
///
/// Ownership: takes `session` back. Errors: `PEERLB_INVALID_ARGUMENT` for NULL.
///
/// # Safety
/// `session` must be NULL or from `peerlb_session_open`, not yet closed, and not used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn peerlb_session_close(session: *mut peerlb_session) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let closed = unsafe { handle::borrow(session) }?.close();
        // SAFETY: forwarded contract: from peerlb_session_open, freed once here.
        unsafe { handle::free(session) };
        closed
    })
}

/// The name of a session event kind: `"created"`, `"terminated"`, `"failover-requested"`,
/// or `"unknown"` for any other value.
///
/// Ownership: a static string; never free it. Never NULL. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn peerlb_session_event_kind_str(kind: peerlb_session_event_kind) -> *const c_char {
    match kind {
        PEERLB_SESSION_EVENT_CREATED => c"created".as_ptr(),
        PEERLB_SESSION_EVENT_TERMINATED => c"terminated".as_ptr(),
        PEERLB_SESSION_EVENT_FAILOVER_REQUESTED => c"failover-requested".as_ptr(),
        _ => c"unknown".as_ptr(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_core() {
        for kind in SessionEventKind::ALL {
            let c = kind_to_c(kind);
            assert_eq!(c, kind as u32);
            let name = unsafe { std::ffi::CStr::from_ptr(peerlb_session_event_kind_str(c)) };
            assert_eq!(name.to_str().unwrap(), kind.as_str());
        }
    }
}
