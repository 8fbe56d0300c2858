//! Status codes and the calling thread's last error: how a failure reaches C.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::sync::OnceLock;

use peerlb::{Error, ErrorCode};

/// The result of every fallible peerlb call.
///
/// `PEERLB_OK` (0) is success. Every other value is one of the core's error codes, with
/// the same number (`ErrorCode::as_u32()`; numbers never change). A caught panic (an
/// internal bug) is `PEERLB_INTERNAL`. `peerlb_last_error_message()` tells what went
/// wrong and `peerlb_status_str()` names a code.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum peerlb_status {
    /// Success.
    PEERLB_OK = 0,
    /// An argument was malformed: NULL pointer, non-UTF-8, empty or over-long peer id,
    /// unknown strategy, outcome or status value, an impossible array length.
    PEERLB_INVALID_ARGUMENT = 1,
    /// `peerlb_list_start` on a list that is already running.
    PEERLB_ALREADY_STARTED = 2,
    /// `peerlb_list_stop` or `peerlb_list_choose` on a list that is not running (or was
    /// stopped while the choose waited).
    PEERLB_NOT_STARTED = 3,
    /// `peerlb_list_choose` waited until the request's timeout without an available peer.
    PEERLB_TIMEOUT = 4,
    /// `peerlb_list_choose` found no available peer and the request has no timeout.
    PEERLB_NO_DEADLINE = 5,
    /// `peerlb_list_choose` found no available peer on a `fail_fast` list.
    PEERLB_NO_PEER_AVAILABLE = 6,
    /// `peerlb_list_update` added a peer that is already in the list.
    PEERLB_PEER_ALREADY_IN_LIST = 7,
    /// `peerlb_list_update` removed a peer that is not in the list.
    PEERLB_PEER_NOT_IN_LIST = 8,
    /// A transport's `retain` or `release` failed (returned non-zero).
    PEERLB_TRANSPORT_FAILED = 9,
    /// Several failures of different kinds; `peerlb_last_error_codes()` lists them.
    PEERLB_MULTIPLE_ERRORS = 10,
    /// An updater's source failed (missing file, bad line, DNS failure); the updater keeps
    /// the last good set.
    PEERLB_SOURCE_FAILED = 11,
    /// A retried call gave up: every attempt failed, or the retry budget refused a retry;
    /// the message lists each attempt's error (`retry attempts exceeded (e1; e2; e3)`).
    PEERLB_RETRY_EXHAUSTED = 12,
    /// The peer declined the request on purpose (e.g. overload); a retried call stops.
    PEERLB_DECLINED = 13,
    /// A choice was finished (or reported to a retry) a second time; the first finish
    /// stands and the second changed nothing.
    PEERLB_ALREADY_FINISHED = 14,
    /// peerlb caught a panic (an internal bug); the message is the panic's. The call did
    /// nothing or only part of it, and the list is left consistent. (`PEERLB_PANIC` is an
    /// older name of this value.)
    PEERLB_INTERNAL = 15,
    /// A circuit breaker refused `peerlb_list_choose` at once: the list has its
    /// `max_pending` requests in flight, or every peer it tried has `max_pending_per_peer`.
    PEERLB_OVERLOADED = 16,
}

pub(crate) use peerlb_status::*;

impl peerlb_status {
    /// The status for a core error code (matched exhaustively, so a new core code cannot be
    /// forgotten here).
    pub fn from_code(code: ErrorCode) -> peerlb_status {
        match code {
            ErrorCode::InvalidArgument => PEERLB_INVALID_ARGUMENT,
            ErrorCode::AlreadyStarted => PEERLB_ALREADY_STARTED,
            ErrorCode::NotStarted => PEERLB_NOT_STARTED,
            ErrorCode::Timeout => PEERLB_TIMEOUT,
            ErrorCode::NoDeadline => PEERLB_NO_DEADLINE,
            ErrorCode::NoPeerAvailable => PEERLB_NO_PEER_AVAILABLE,
            ErrorCode::PeerAlreadyInList => PEERLB_PEER_ALREADY_IN_LIST,
            ErrorCode::PeerNotInList => PEERLB_PEER_NOT_IN_LIST,
            ErrorCode::TransportFailed => PEERLB_TRANSPORT_FAILED,
            ErrorCode::MultipleErrors => PEERLB_MULTIPLE_ERRORS,
            ErrorCode::SourceFailed => PEERLB_SOURCE_FAILED,
            ErrorCode::RetryExhausted => PEERLB_RETRY_EXHAUSTED,
            ErrorCode::Declined => PEERLB_DECLINED,
            ErrorCode::AlreadyFinished => PEERLB_ALREADY_FINISHED,
            ErrorCode::Internal => PEERLB_INTERNAL,
            ErrorCode::Overloaded => PEERLB_OVERLOADED,
        }
    }

    /// The core's code for a status; `None` for `PEERLB_OK`.
    fn code(self) -> Option<ErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| peerlb_status::from_code(*c) == self)
    }

    /// The kebab-case name (`"ok"`, `"timeout"`, `"internal"`, ...): the core code's.
    pub fn as_str(self) -> &'static str {
        self.code().map_or("ok", ErrorCode::as_str)
    }
}

/// The kebab-case name of status value `value` as a C string (the core code's name;
/// `"ok"` for 0), or `None` for a value that is no status.
fn name_of(value: u32) -> Option<&'static CStr> {
    static NAMES: OnceLock<Vec<(u32, CString)>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        std::iter::once((0, "ok"))
            .chain(ErrorCode::ALL.iter().map(|c| (c.as_u32(), c.as_str())))
            .map(|(v, name)| (v, CString::new(name).expect("names are ASCII")))
            .collect()
    });
    names
        .iter()
        .find(|(v, _)| *v == value)
        .map(|(_, name)| name.as_c_str())
}

struct LastError {
    message: CString,
    codes: Vec<peerlb_status>,
    /// The peer the error is about (`Error::peer`), if any.
    peer: Option<CString>,
    /// The remote system's code (`Error::remote_code`), if any.
    remote_code: Option<i64>,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = RefCell::new(LastError {
        message: CString::default(),
        codes: Vec::new(),
        peer: None,
        remote_code: None,
    });
}

/// Records `error` as the calling thread's last error and returns its status. Kept out of
/// line: entry points inline their success path and call this only on failure.
#[cold]
#[inline(never)]
pub(crate) fn record_error(error: &Error) -> peerlb_status {
    let codes = error
        .errors()
        .iter()
        .map(|e| peerlb_status::from_code(e.code()))
        .collect();
    let message = crate::handle::c_string(error.to_string());
    let peer = error.peer().map(|p| crate::handle::c_string(p.to_owned()));
    let remote_code = error.remote_code();
    let _ = LAST_ERROR.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = LastError {
                message,
                codes,
                peer,
                remote_code,
            };
        }
    });
    peerlb_status::from_code(error.code())
}

/// An `invalid-argument` error with `message`.
pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// The message of the last call on the calling thread that failed, or `""` when none has.
///
/// Ownership: the string belongs to peerlb; it stays valid until the next failing peerlb
/// call on the same thread (or the thread's exit). Copy it if you need it longer. Never
/// NULL. Thread safety: each thread has its own last error.
#[no_mangle]
pub extern "C" fn peerlb_last_error_message() -> *const c_char {
    crate::boundary::guard_value(c"".as_ptr(), || {
        LAST_ERROR
            .try_with(|last| match last.try_borrow() {
                Ok(last) => last.message.as_ptr(),
                Err(_) => c"".as_ptr(),
            })
            .unwrap_or(c"".as_ptr())
    })
}

/// The individual error codes of the last failed call on the calling thread.
///
/// A call that failed with `PEERLB_MULTIPLE_ERRORS` (or with one code for several peers,
/// e.g. two unknown removals) lists each failure in the order it happened; a simple
/// failure lists one code. Writes at most `capacity` codes to `codes` (which may be NULL
/// when `capacity` is 0) and returns how many there are in all (0 when no call failed yet).
///
/// Ownership: the caller owns `codes`; nothing is allocated. Thread safety: each thread
/// has its own last error.
///
/// # Safety
/// `codes` must point to `capacity` writable `peerlb_status` values, or be NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_last_error_codes(
    codes: *mut peerlb_status,
    capacity: usize,
) -> usize {
    crate::boundary::guard_value(0, || {
        LAST_ERROR
            .try_with(|last| {
                let Ok(last) = last.try_borrow() else {
                    return 0;
                };
                if !codes.is_null() {
                    for (i, code) in last.codes.iter().take(capacity).enumerate() {
                        // SAFETY: the caller gives `capacity` writable slots.
                        unsafe { codes.add(i).write(*code) };
                    }
                }
                last.codes.len()
            })
            .unwrap_or(0)
    })
}

/// The peer the last failed call on the calling thread was about, or `""` when it was
/// about no peer (or no call failed yet): the peer that declined a session or a retried
/// call, the last failed attempt's peer of a retry or failover that gave up, the peer of
/// `PEERLB_PEER_NOT_IN_LIST`, `PEERLB_PEER_ALREADY_IN_LIST` and `PEERLB_TRANSPORT_FAILED`
/// (a WebSocket balancer's `RemoteSystemError.GetID()`).
///
/// Ownership: as `peerlb_last_error_message`. Never NULL. Thread safety: each thread has
/// its own last error.
#[no_mangle]
pub extern "C" fn peerlb_last_error_peer() -> *const c_char {
    crate::boundary::guard_value(c"".as_ptr(), || {
        LAST_ERROR
            .try_with(|last| match last.try_borrow() {
                Ok(last) => last.peer.as_ref().map_or(c"".as_ptr(), |p| p.as_ptr()),
                Err(_) => c"".as_ptr(),
            })
            .unwrap_or(c"".as_ptr())
    })
}

/// The remote system's own code of the last failed call on the calling thread (an HTTP
/// status, a WebSocket close code), as reported with the attempt
/// (`peerlb_session_failover`, `peerlb_session_decline`, `peerlb_retry_*_with_code`): writes
/// it to `*code` and returns true, or returns false (and leaves `*code`) when the error
/// carries none. A WebSocket balancer's `RemoteSystemError.Code()`.
///
/// Ownership: `*code` is the caller's; `code` may be NULL (then only the answer is
/// given). Thread safety: each thread has its own last error.
///
/// # Safety
/// `code` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_last_error_remote_code(code: *mut i64) -> bool {
    crate::boundary::guard_value(false, || {
        let got = LAST_ERROR
            .try_with(|last| last.try_borrow().ok().and_then(|l| l.remote_code))
            .ok()
            .flatten();
        match got {
            Some(value) => {
                // SAFETY: forwarded contract.
                if let Some(out) = unsafe { crate::handle::out_optional(code) } {
                    out.write(value);
                }
                true
            }
            None => false,
        }
    })
}

/// The kebab-case name of a status: `"ok"`, `"invalid-argument"`, ..., `"internal"`, and
/// `"unknown"` for a value that is no `peerlb_status`.
///
/// Ownership: a static string; never free it. Never NULL. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn peerlb_status_str(status: u32) -> *const c_char {
    crate::boundary::guard_value(c"unknown".as_ptr(), || {
        name_of(status).map_or(c"unknown".as_ptr(), CStr::as_ptr)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_core_codes() {
        assert_eq!(PEERLB_OK as u32, 0);
        assert_eq!(PEERLB_OK.as_str(), "ok");
        for code in ErrorCode::ALL {
            let status = peerlb_status::from_code(code);
            assert_eq!(status as u32, code.as_u32(), "{code}");
            assert_eq!(status.as_str(), code.as_str());
            let name = unsafe { CStr::from_ptr(peerlb_status_str(status as u32)) };
            assert_eq!(name.to_str().unwrap(), code.as_str());
        }
        let unknown = unsafe { CStr::from_ptr(peerlb_status_str(100)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown");
    }

    #[test]
    fn multiple_errors_list_their_codes() {
        let e = Error::Multiple(vec![
            Error::PeerNotInList("a".into()),
            Error::PeerAlreadyInList("b".into()),
        ]);
        assert_eq!(record_error(&e), PEERLB_MULTIPLE_ERRORS);
        let mut codes = [PEERLB_OK; 4];
        let n = unsafe { peerlb_last_error_codes(codes.as_mut_ptr(), 4) };
        assert_eq!(n, 2);
        assert_eq!(
            &codes[..2],
            &[PEERLB_PEER_NOT_IN_LIST, PEERLB_PEER_ALREADY_IN_LIST]
        );
        assert_eq!(
            unsafe { peerlb_last_error_codes(std::ptr::null_mut(), 0) },
            2
        );
    }
}
