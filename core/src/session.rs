//! Sessions: long-lived connections (a WebSocket, a TCP stream, a gRPC stream) bound to one
//! peer of a list, with failover to another peer.
//!
//! * **Opening.** [`PeerList::open_session`] chooses a peer with `choose`'s rules (deadline,
//!   `no-deadline`, `fail_fast`, shard key) and binds a new session to it. While bound, the
//!   session counts as one pending request on its peer, so `fewest-pending` means fewest
//!   connections.
//! * **Failover** ([`Session::failover`]), after an abnormal closure of the connection:
//!   the current attempt ends as a `failure` (it counts toward ejection; when an admin had
//!   asked the session to move, as `cancelled`, which counts for nothing), and the session
//!   is bound to a *different* available peer, preferring peers it has not tried since its
//!   last successful exchange ([`Session::ok`]). It returns the new peer, or fails with
//!   `timeout` (the request's deadline passed) or `no-peer-available` (no deadline, or a
//!   `fail_fast` list); that error carries the peer the session left and the code given
//!   with the reason ([`Error::peer`], [`Error::remote_code`]). The session id stays the
//!   same. After a failed failover the session is open but bound to no peer: fail over
//!   again, or close it.
//! * **Decline** ([`Session::decline`]): the peer refused on purpose (authentication):
//!   the session ends, with no retry, counting neither as failure nor as success for the
//!   peer.
//! * **Close** ([`Session::close`]): a normal closure; the attempt ends as `ok`. Dropping
//!   an open session closes it.
//! * **Admin.** `disable(peer)` leaves its sessions alone (no new ones are opened there);
//!   `delete(peer)` (and any removal of the peer) and `failover(peer)` ask its sessions to
//!   move: [`Session::failover_requested`] turns true and the listener hears
//!   `failover-requested`. The library never ends a session by itself: its owner calls
//!   `failover` or `close`.
//!
//! Session events ([`PeerList::subscribe_sessions`]) describe *bindings*: `created` when a
//! session is bound to a peer (opened, or failed over), `terminated` when a binding ends
//! (failover, decline, close), `failover-requested` when an admin asks it to move. A
//! failover is heard as `terminated` (old peer, the reason) then `created` (new peer). They
//! are delivered like peer events: after the list's lock is released, in order, one at a
//! time, re-entrant, and a panicking listener is skipped.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use peerlb::{ListOptions, PeerList, Request};
//!
//! let list = PeerList::new(ListOptions::default().shuffle(false)).unwrap();
//! list.update(["a:1", "b:1"], None::<&str>).unwrap();
//! list.start().unwrap();
//! let heard = Arc::new(Mutex::new(Vec::new()));
//! let log = heard.clone();
//! let _sub = list.subscribe_sessions(move |e| log.lock().unwrap().push(e.to_string()));
//!
//! let session = list.open_session(&Request::new()).unwrap();
//! assert_eq!(session.peer().as_str(), "a:1");
//! assert_eq!(list.peer_status("a:1").unwrap().pending, 1);
//! let moved_to = session.failover("connection reset").unwrap();
//! assert_eq!(moved_to.as_str(), "b:1");
//! session.close().unwrap();
//! assert_eq!(
//!     *heard.lock().unwrap(),
//!     ["created 1 a:1", "terminated 1 a:1", "created 1 b:1", "terminated 1 b:1"]
//! );
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::choice::Choice;
use crate::error::{Error, Result};
use crate::list::PeerList;
use crate::now_or_later::{Later, NowOrLater};
use crate::peer::PeerId;
use crate::request::{Outcome, Request};

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SessionEventKind {
    /// The session was bound to the peer: opened, or failed over to it.
    Created = 1,
    /// The session's binding to the peer ended: failover (reason given by its owner),
    /// decline (`"declined: <reason>"`) or close (`"closed"`).
    Terminated = 2,
    /// An admin asked the session to move off the peer (`failover(peer)`, `delete(peer)`,
    /// or the peer was removed).
    FailoverRequested = 3,
}

impl SessionEventKind {
    /// Every kind, in numeric order.
    pub const ALL: [SessionEventKind; 3] = [
        SessionEventKind::Created,
        SessionEventKind::Terminated,
        SessionEventKind::FailoverRequested,
    ];

    /// `"created"`, `"terminated"` or `"failover-requested"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEventKind::Created => "created",
            SessionEventKind::Terminated => "terminated",
            SessionEventKind::FailoverRequested => "failover-requested",
        }
    }
}

impl fmt::Display for SessionEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One session event: a kind, the session, the peer and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    /// What happened.
    pub kind: SessionEventKind,
    /// The session's id ([`Session::id`]).
    pub session: u64,
    /// The peer the session was bound to (`created`: the new one).
    pub peer: PeerId,
    /// Why: `"opened"` or `"failover"` for `created`; the failover's reason,
    /// `"declined: <reason>"` or `"closed"` for `terminated`; what the admin did for
    /// `failover-requested`.
    pub reason: String,
}

impl fmt::Display for SessionEvent {
    /// `"<kind> <session> <peer>"`, the form conformance scenarios compare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.kind, self.session, self.peer)
    }
}

/// Why a session fails over or is declined: words for people, and the remote system's own
/// code if there is one (a WebSocket close code, an HTTP status), which errors about the
/// attempt carry ([`Error::remote_code`]).
///
/// ```
/// use peerlb::session::Reason;
/// let r: Reason = "connection reset".into();
/// assert_eq!(r.code(), None);
/// let r = Reason::new("handshake refused").with_code(401);
/// assert_eq!((r.text(), r.code()), ("handshake refused", Some(401)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reason {
    text: String,
    code: Option<i64>,
}

impl Reason {
    /// A reason with no code.
    pub fn new(text: impl Into<String>) -> Reason {
        Reason {
            text: text.into(),
            code: None,
        }
    }

    /// The same reason with the remote system's code.
    pub fn with_code(mut self, code: i64) -> Reason {
        self.code = Some(code);
        self
    }

    /// The words.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The remote system's code, if given.
    pub fn code(&self) -> Option<i64> {
        self.code
    }
}

impl From<&str> for Reason {
    fn from(text: &str) -> Reason {
        Reason::new(text)
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Reason {
        Reason::new(text)
    }
}

impl From<&String> for Reason {
    fn from(text: &String) -> Reason {
        Reason::new(text.clone())
    }
}

/// A long-lived connection bound to one peer of a list (see the [module docs](self)).
///
/// Every method takes `&self`, so a session may be shared between the tasks that read and
/// write its connection (`Arc<Session>`). Dropping an open session closes it.
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

/// What a session and the waits of its failovers share.
pub(crate) struct SessionInner {
    pub(crate) list: PeerList,
    pub(crate) id: u64,
    /// Set by admin `failover`/`delete`; cleared when the session is bound again. Shared
    /// with the list's session table.
    pub(crate) flag: Arc<AtomicBool>,
    /// The shard key it was opened with (failovers vary it, as retries do).
    pub(crate) key: Option<Vec<u8>>,
    /// Changed only inside a commit of its list (list lock, then this lock), so the list's
    /// session table and this state always agree.
    pub(crate) state: Mutex<SessionState>,
}

pub(crate) struct SessionState {
    /// The current attempt; `None` while bound to no peer (after a failed failover) or
    /// once ended.
    pub(crate) choice: Option<Choice>,
    /// The peer it is (or was last) bound to.
    pub(crate) peer: PeerId,
    /// Peers tried since the last [`Session::ok`] (the current one included).
    pub(crate) tried: Vec<PeerId>,
    /// Closed or declined.
    pub(crate) ended: bool,
    /// Failovers so far.
    pub(crate) failovers: u32,
}

impl SessionInner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error for a call on a session that has ended.
    pub(crate) fn ended_error(&self) -> Error {
        Error::AlreadyFinished(format!("session {} is closed", self.id))
    }
}

impl Session {
    /// The session's id: unique within its list, counting from 1 in the order sessions
    /// were opened; it stays the same across failovers.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The peer the session is bound to (after a failed failover, the peer it left).
    pub fn peer(&self) -> PeerId {
        self.inner.lock().peer.clone()
    }

    /// Whether the session is bound to a peer now (false once ended, and after a failed
    /// failover).
    pub fn is_bound(&self) -> bool {
        self.inner.lock().choice.is_some()
    }

    /// Whether the session is still open (not closed or declined).
    pub fn is_open(&self) -> bool {
        !self.inner.lock().ended
    }

    /// How many times the session failed over.
    pub fn failovers(&self) -> u32 {
        self.inner.lock().failovers
    }

    /// Whether an admin asked the session to move off its peer (`failover(peer)`,
    /// `delete(peer)` or a removal of the peer) since it was bound there. Call
    /// [`Session::failover`] to move it; nothing moves it by itself.
    pub fn failover_requested(&self) -> bool {
        self.inner.flag.load(Ordering::Acquire)
    }

    /// Marks a successful exchange with the peer: its failure streak ends (as an `ok`
    /// outcome would), and the next failover again prefers every peer but the current one.
    /// `already-finished` when the session has ended.
    pub fn ok(&self) -> Result<()> {
        let mut state = self.inner.lock();
        if state.ended {
            return Err(self.inner.ended_error());
        }
        if let Some(choice) = &state.choice {
            choice.record_ok();
        }
        let current = state.peer.clone();
        state.tried.clear();
        state.tried.push(current);
        Ok(())
    }

    /// Fails the session over after an abnormal closure (see the [module docs](self)): the
    /// current attempt ends as a `failure`, and the session is bound to a different
    /// available peer, which is returned. There is no deadline: when no other peer is
    /// available now, it fails at once with `no-peer-available` (see
    /// [`Session::failover_with`] to wait). `already-finished` when the session has ended.
    pub fn failover(&self, reason: impl Into<Reason>) -> Result<PeerId> {
        self.failover_with(reason, &Request::new())
    }

    /// [`Session::failover`] waiting for another peer until the request's deadline
    /// (`timeout` after it); a shard key in the request replaces the session's. Blocks this
    /// thread while it waits.
    pub fn failover_with(
        &self,
        reason: impl Into<Reason>,
        request: &Request<'_>,
    ) -> Result<PeerId> {
        self.failover_now(reason, request).wait()
    }

    /// [`Session::failover`] for async code.
    pub async fn failover_async(&self, reason: impl Into<Reason>) -> Result<PeerId> {
        self.failover_with_async(reason, &Request::new()).await
    }

    /// [`Session::failover_with`] for async code: waits without blocking a thread.
    pub async fn failover_with_async(
        &self,
        reason: impl Into<Reason>,
        request: &Request<'_>,
    ) -> Result<PeerId> {
        match self.failover_now(reason, request) {
            NowOrLater::Now(result) => result,
            NowOrLater::Later(wait) => wait.await,
        }
    }

    /// [`Session::failover_with`] without blocking: the new peer or the final error now,
    /// or a [`Later`] that waits for a peer (the bindings wait their own way). The old
    /// attempt has ended when this returns. Dropping the `Later` abandons the wait and
    /// leaves the session open and bound to no peer.
    pub fn failover_now(
        &self,
        reason: impl Into<Reason>,
        request: &Request<'_>,
    ) -> NowOrLater<Result<PeerId>> {
        let reason = reason.into();
        let inner = &self.inner;
        let left = match inner.list.shared.session_leave(inner, &reason) {
            Ok(left) => left,
            Err(e) => return NowOrLater::Now(Err(e)),
        };
        let key = request
            .shard_key()
            .map(<[u8]>::to_vec)
            .or_else(|| inner.key.clone());
        let deadline = request.deadline();
        match inner
            .list
            .shared
            .choose_for_failover_now(inner.id, &left, deadline, key.as_deref())
        {
            NowOrLater::Now(result) => {
                NowOrLater::Now(finish_failover(inner, result, &left, &reason))
            }
            NowOrLater::Later(wait) => {
                let inner = inner.clone();
                NowOrLater::Later(Later::new(async move {
                    let result = wait.await;
                    finish_failover(&inner, result, &left, &reason)
                }))
            }
        }
    }

    /// The peer declined the session on purpose (e.g. an authentication failure): the
    /// session ends with no retry, and the attempt counts neither as a failure nor as a
    /// success for the peer. Returns the `declined` error describing it, which carries the
    /// peer and the reason's code ([`Error::peer`], [`Error::remote_code`]); on a session
    /// that has ended, the `already-finished` error.
    ///
    /// ```
    /// use peerlb::{ErrorCode, ListOptions, PeerList, Request};
    /// use peerlb::session::Reason;
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// list.update(["a:1"], None::<&str>).unwrap();
    /// list.start().unwrap();
    /// let s = list.open_session(&Request::new()).unwrap();
    /// let e = s.decline(Reason::new("HTTP 401").with_code(401));
    /// assert_eq!(e.code(), ErrorCode::Declined);
    /// assert_eq!((e.peer(), e.remote_code()), (Some("a:1"), Some(401)));
    /// assert!(!s.is_open());
    /// ```
    pub fn decline(&self, reason: impl Into<Reason>) -> Error {
        let reason = reason.into();
        let detail = format!("declined: {}", reason.text);
        match self
            .inner
            .list
            .shared
            .session_end(&self.inner, &detail, Outcome::Declined)
        {
            Ok(peer) => Error::Declined(format!(
                "peer {:?} declined session {}: {}",
                peer.as_str(),
                self.inner.id,
                reason.text
            ))
            .at_peer(peer.as_str(), reason.code),
            Err(e) => e,
        }
    }

    /// Closes the session normally: the attempt ends as `ok`, the listener hears
    /// `terminated` (reason `"closed"`). `already-finished` when it has ended already.
    pub fn close(&self) -> Result<()> {
        self.inner
            .list
            .shared
            .session_end(&self.inner, "closed", Outcome::Ok)
            .map(drop)
    }

    /// The list the session belongs to.
    pub fn list(&self) -> &PeerList {
        &self.inner.list
    }
}

/// Binds the session to the peer a failover chose, or turns the choose's error into the
/// failover's (carrying the peer left and the reason's code).
fn finish_failover(
    inner: &Arc<SessionInner>,
    chosen: Result<Choice>,
    left: &crate::list::Left,
    reason: &Reason,
) -> Result<PeerId> {
    match chosen {
        Ok(choice) => inner.list.shared.session_bind(inner, choice),
        Err(e) => {
            let Some(peer) = &left.peer else {
                return Err(e);
            };
            let message = format!(
                "session {} could not fail over from peer {:?} ({}): {}",
                inner.id,
                peer.as_str(),
                if reason.text.is_empty() {
                    "no reason given"
                } else {
                    reason.text.as_str()
                },
                e
            );
            let error = match e.code() {
                crate::ErrorCode::Timeout => Error::Timeout(message),
                crate::ErrorCode::NoPeerAvailable => Error::NoPeerAvailable(message),
                crate::ErrorCode::NotStarted => Error::NotStarted(message),
                crate::ErrorCode::Overloaded => Error::Overloaded(message),
                _ => return Err(e),
            };
            Err(error.at_peer(peer.as_str(), reason.code))
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.inner.lock().ended {
            let _ = self.close();
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("Session")
            .field("id", &self.inner.id)
            .field("peer", &state.peer)
            .field("bound", &state.choice.is_some())
            .field("open", &!state.ended)
            .finish()
    }
}

impl PeerList {
    /// Opens a session (see [`crate::session`]): chooses a peer with `choose`'s rules
    /// (blocking while it waits) and binds a new session to it; the listener hears
    /// `created`.
    pub fn open_session(&self, request: &Request<'_>) -> Result<Session> {
        self.open_session_now(request).wait()
    }

    /// [`PeerList::open_session`] for async code: waits without blocking a thread.
    pub async fn open_session_async(&self, request: &Request<'_>) -> Result<Session> {
        match self.open_session_now(request) {
            NowOrLater::Now(result) => result,
            NowOrLater::Later(wait) => wait.await,
        }
    }

    /// [`PeerList::open_session`] without blocking: the session or the final error now, or
    /// a [`Later`] that waits for a peer (what the bindings wait on).
    pub fn open_session_now(&self, request: &Request<'_>) -> NowOrLater<Result<Session>> {
        let key = request.shard_key().map(<[u8]>::to_vec);
        match self.choose_now(request) {
            NowOrLater::Now(result) => NowOrLater::Now(result.map(|c| self.new_session(c, key))),
            NowOrLater::Later(wait) => {
                let list = self.clone();
                NowOrLater::Later(Later::new(async move {
                    wait.await.map(|c| list.new_session(c, key))
                }))
            }
        }
    }

    fn new_session(&self, choice: Choice, key: Option<Vec<u8>>) -> Session {
        Session {
            inner: self.shared.session_open(self, choice, key),
        }
    }
}
