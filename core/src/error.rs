//! The one error type of peerlb and its stable, machine-readable codes.
//!
//! Every surface maps [`ErrorCode`] one to one: C to `peerlb_status`, Python to a
//! `peerlb.PeerlbError` subclass, Node to an `Error` whose `code` is
//! `PEERLB_` + the code in upper snake case (`PEERLB_NO_PEER_AVAILABLE`).

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stable, machine-readable error code.
///
/// The string form ([`ErrorCode::as_str`]) is what conformance scenarios, Python's `.code`
/// and (upper-cased, prefixed) Node's `code` carry. The numeric value is the C
/// `peerlb_status` value and never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// An argument was malformed: bad peer id, unknown strategy, bad option value.
    InvalidArgument = 1,
    /// `start()` on a list that is already running.
    AlreadyStarted = 2,
    /// `stop()` or `choose()` on a list that is not running (or stopped while waiting).
    NotStarted = 3,
    /// `choose()` waited until the request's deadline without an available peer.
    Timeout = 4,
    /// `choose()` found no available peer and the request has no deadline to wait for.
    NoDeadline = 5,
    /// `choose()` found no available peer on a `fail_fast` list.
    NoPeerAvailable = 6,
    /// `update()` tried to add a peer that is already in the list.
    PeerAlreadyInList = 7,
    /// `update()` tried to remove a peer that is not in the list.
    PeerNotInList = 8,
    /// A transport's `retain` or `release` failed (returned an error, raised, or panicked).
    TransportFailed = 9,
    /// Several failures of different kinds, reported together (see [`Error::errors`]).
    MultipleErrors = 10,
    /// An updater's source failed (missing file, bad line, DNS failure, etcd unreachable);
    /// the updater keeps the last good set.
    SourceFailed = 11,
    /// A retried call gave up: every attempt failed, or the retry budget refused a retry.
    /// The message lists each attempt's error.
    RetryExhausted = 12,
    /// The peer declined the request on purpose (e.g. overload); a retried call stops.
    Declined = 13,
    /// A choice (or another one-shot handle) was finished a second time. The first finish
    /// stands; the second changes nothing.
    AlreadyFinished = 14,
    /// peerlb caught a panic (an internal bug, or a panicking custom strategy) at a
    /// boundary; the message is the panic's. The list is left as it was.
    Internal = 15,
    /// A circuit breaker refused the request at once: the list has `max_pending` requests
    /// in flight, or every peer it tried has `max_pending_per_peer` (Envoy's overflow).
    Overloaded = 16,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::InvalidArgument,
        ErrorCode::AlreadyStarted,
        ErrorCode::NotStarted,
        ErrorCode::Timeout,
        ErrorCode::NoDeadline,
        ErrorCode::NoPeerAvailable,
        ErrorCode::PeerAlreadyInList,
        ErrorCode::PeerNotInList,
        ErrorCode::TransportFailed,
        ErrorCode::MultipleErrors,
        ErrorCode::SourceFailed,
        ErrorCode::RetryExhausted,
        ErrorCode::Declined,
        ErrorCode::AlreadyFinished,
        ErrorCode::Internal,
        ErrorCode::Overloaded,
    ];

    /// The kebab-case name, e.g. `"no-peer-available"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid-argument",
            ErrorCode::AlreadyStarted => "already-started",
            ErrorCode::NotStarted => "not-started",
            ErrorCode::Timeout => "timeout",
            ErrorCode::NoDeadline => "no-deadline",
            ErrorCode::NoPeerAvailable => "no-peer-available",
            ErrorCode::PeerAlreadyInList => "peer-already-in-list",
            ErrorCode::PeerNotInList => "peer-not-in-list",
            ErrorCode::TransportFailed => "transport-failed",
            ErrorCode::MultipleErrors => "multiple-errors",
            ErrorCode::SourceFailed => "source-failed",
            ErrorCode::RetryExhausted => "retry-exhausted",
            ErrorCode::Declined => "declined",
            ErrorCode::AlreadyFinished => "already-finished",
            ErrorCode::Internal => "internal",
            ErrorCode::Overloaded => "overloaded",
        }
    }

    /// Parses the kebab-case name back into a code.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The numeric value (C's `peerlb_status`).
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in peerlb.
///
/// Messages are meant for people (they name the list's strategy, its peers and what to do);
/// programs should match on [`Error::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorCode::InvalidArgument`].
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// See [`ErrorCode::AlreadyStarted`].
    #[error("{0}")]
    AlreadyStarted(String),
    /// See [`ErrorCode::NotStarted`].
    #[error("{0}")]
    NotStarted(String),
    /// See [`ErrorCode::Timeout`].
    #[error("{0}")]
    Timeout(String),
    /// See [`ErrorCode::NoDeadline`].
    #[error("{0}")]
    NoDeadline(String),
    /// See [`ErrorCode::NoPeerAvailable`].
    #[error("{0}")]
    NoPeerAvailable(String),
    /// See [`ErrorCode::PeerAlreadyInList`]; carries the peer id.
    #[error("peer {0:?} is already in the list")]
    PeerAlreadyInList(String),
    /// See [`ErrorCode::PeerNotInList`]; carries the peer id.
    #[error("peer {0:?} is not in the list")]
    PeerNotInList(String),
    /// See [`ErrorCode::TransportFailed`].
    #[error("transport failed to {operation} peer {peer:?}: {message}")]
    TransportFailed {
        /// `"retain"` or `"release"`.
        operation: &'static str,
        /// The peer the transport was asked about.
        peer: String,
        /// What the transport said (its error, exception or panic message).
        message: String,
    },
    /// Several errors reported together by one operation (e.g. `update`), in the order they
    /// happened. Its code is the common code when all share one, else `multiple-errors`.
    #[error("{}", join_messages(.0))]
    Multiple(Vec<Error>),
    /// See [`ErrorCode::SourceFailed`]; the message names the source (file and line,
    /// DNS name, etcd endpoint) and what went wrong.
    #[error("updater source failed: {0}")]
    SourceFailed(String),
    /// See [`ErrorCode::RetryExhausted`]; e.g. `retry attempts exceeded (e1; e2; e3)`.
    #[error("{0}")]
    RetryExhausted(String),
    /// See [`ErrorCode::Declined`].
    #[error("{0}")]
    Declined(String),
    /// See [`ErrorCode::AlreadyFinished`].
    #[error("{0}")]
    AlreadyFinished(String),
    /// See [`ErrorCode::Internal`].
    #[error("internal error (a caught panic): {0}")]
    Internal(String),
    /// See [`ErrorCode::Overloaded`]; the message names the list and the limit.
    #[error("{0}")]
    Overloaded(String),
    /// An error about an attempt on a remote system (a peer that declined, or a failed
    /// attempt that ended a retry or a session's failover): the error itself plus the peer
    /// and the remote system's own numeric code, if it gave one (an HTTP status, a
    /// WebSocket close code). Its [`Error::code`] and message are the inner error's; read
    /// the rest with [`Error::peer`] and [`Error::remote_code`]. See [`RemoteSystem`].
    #[error("{}", .0.error)]
    RemoteSystem(Box<RemoteSystem>),
}

/// What [`Error::RemoteSystem`] carries: the error, the remote system (peer) it is about,
/// and that system's numeric code if it gave one (a WebSocket balancer's
/// `RemoteSystemError.GetID()` and `.Code()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSystem {
    /// The error (its code and message are the outer error's).
    pub error: Error,
    /// The peer id of the remote system.
    pub peer: String,
    /// The remote system's own code (HTTP status, WebSocket close code), if known.
    pub code: Option<i64>,
}

fn join_messages(errors: &[Error]) -> String {
    let parts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    format!("{} errors: {}", errors.len(), parts.join("; "))
}

impl Error {
    /// The stable code of this error.
    ///
    /// ```
    /// use peerlb::{Error, ErrorCode};
    /// let e = Error::PeerNotInList("a:1".into());
    /// assert_eq!(e.code(), ErrorCode::PeerNotInList);
    /// assert_eq!(e.code().as_str(), "peer-not-in-list");
    /// ```
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::AlreadyStarted(_) => ErrorCode::AlreadyStarted,
            Error::NotStarted(_) => ErrorCode::NotStarted,
            Error::Timeout(_) => ErrorCode::Timeout,
            Error::NoDeadline(_) => ErrorCode::NoDeadline,
            Error::NoPeerAvailable(_) => ErrorCode::NoPeerAvailable,
            Error::PeerAlreadyInList(_) => ErrorCode::PeerAlreadyInList,
            Error::PeerNotInList(_) => ErrorCode::PeerNotInList,
            Error::TransportFailed { .. } => ErrorCode::TransportFailed,
            Error::SourceFailed(_) => ErrorCode::SourceFailed,
            Error::RetryExhausted(_) => ErrorCode::RetryExhausted,
            Error::Declined(_) => ErrorCode::Declined,
            Error::AlreadyFinished(_) => ErrorCode::AlreadyFinished,
            Error::Internal(_) => ErrorCode::Internal,
            Error::Overloaded(_) => ErrorCode::Overloaded,
            Error::RemoteSystem(remote) => remote.error.code(),
            Error::Multiple(errors) => {
                let first = errors.first().map(Error::code);
                match first {
                    Some(code) if errors.iter().all(|e| e.code() == code) => code,
                    _ => ErrorCode::MultipleErrors,
                }
            }
        }
    }

    /// The individual errors: the inner list for [`Error::Multiple`], else just this one.
    pub fn errors(&self) -> Vec<&Error> {
        match self {
            Error::Multiple(errors) => errors.iter().collect(),
            other => vec![other],
        }
    }

    /// The peer this error is about, if it is about one: the peer of a remote-system error
    /// (a declined or failed attempt), of `peer-already-in-list`, `peer-not-in-list` and
    /// `transport-failed`.
    ///
    /// ```
    /// use peerlb::Error;
    /// let e = Error::Declined("no".into()).at_peer("a:1", Some(401));
    /// assert_eq!(e.peer(), Some("a:1"));
    /// assert_eq!(e.remote_code(), Some(401));
    /// assert_eq!(e.code(), peerlb::ErrorCode::Declined);
    /// assert_eq!(e.to_string(), "no");
    /// assert_eq!(Error::PeerNotInList("b".into()).peer(), Some("b"));
    /// ```
    pub fn peer(&self) -> Option<&str> {
        match self {
            Error::RemoteSystem(remote) => Some(&remote.peer),
            Error::PeerAlreadyInList(peer) | Error::PeerNotInList(peer) => Some(peer),
            Error::TransportFailed { peer, .. } => Some(peer),
            _ => None,
        }
    }

    /// The remote system's own numeric code (an HTTP status, a WebSocket close code) of a
    /// remote-system error, when the caller reported one.
    pub fn remote_code(&self) -> Option<i64> {
        match self {
            Error::RemoteSystem(remote) => remote.code,
            _ => None,
        }
    }

    /// This error as a remote-system error about `peer` with the remote system's `code`
    /// (see [`Error::RemoteSystem`]); the code and message stay this error's.
    pub fn at_peer(self, peer: impl Into<String>, code: Option<i64>) -> Error {
        let error = match self {
            Error::RemoteSystem(remote) => remote.error,
            other => other,
        };
        Error::RemoteSystem(Box::new(RemoteSystem {
            error,
            peer: peer.into(),
            code,
        }))
    }

    /// The error every surface gives for finishing a choice of `peer` a second time.
    ///
    /// ```
    /// use peerlb::{Error, ErrorCode};
    /// let e = Error::already_finished("a:1");
    /// assert_eq!(e.code(), ErrorCode::AlreadyFinished);
    /// assert_eq!(e.to_string(), "the choice of peer \"a:1\" is already finished");
    /// ```
    pub fn already_finished(peer: &str) -> Error {
        Error::AlreadyFinished(format!("the choice of peer {peer:?} is already finished"))
    }

    /// The error for a panic caught at a boundary (`payload` as `catch_unwind` gives it).
    ///
    /// ```
    /// use peerlb::{Error, ErrorCode};
    /// let payload = std::panic::catch_unwind(|| panic!("boom")).unwrap_err();
    /// let e = Error::from_panic(payload.as_ref());
    /// assert_eq!(e.code(), ErrorCode::Internal);
    /// assert!(e.to_string().ends_with("boom"));
    /// ```
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Error {
        Error::Internal(panic_message(payload))
    }

    /// Combines errors the way `update` reports them: none is `Ok`, one is itself, more
    /// are [`Error::Multiple`].
    pub fn combine(mut errors: Vec<Error>) -> Result<()> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.pop().expect("one error")),
            _ => Err(Error::Multiple(errors)),
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
        }
        let mut values: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.as_u32()).collect();
        values.dedup();
        assert_eq!(values.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn multiple_takes_the_common_code() {
        let same = Error::Multiple(vec![
            Error::PeerNotInList("a".into()),
            Error::PeerNotInList("b".into()),
        ]);
        assert_eq!(same.code(), ErrorCode::PeerNotInList);
        let mixed = Error::Multiple(vec![
            Error::PeerNotInList("a".into()),
            Error::PeerAlreadyInList("b".into()),
        ]);
        assert_eq!(mixed.code(), ErrorCode::MultipleErrors);
        assert_eq!(mixed.errors().len(), 2);
        assert!(mixed.to_string().contains("2 errors"));
    }
}
