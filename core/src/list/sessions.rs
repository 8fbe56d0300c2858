//! Sessions in the list: the table of open sessions per peer, the session events, and the
//! choose of a failover (see [`crate::session`] for the rules).
//!
//! Every change of a session's binding goes through [`ListShared::commit`], with the
//! list's lock and then the session's own lock held, so the table and the session always
//! agree and session events keep the order of the changes. A session's attempt (its
//! [`Choice`]) is ended after the commit, outside every lock (ending it may eject the peer,
//! which is another commit).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use foldhash::fast::RandomState;

use super::commit::Commit;
use super::membership::Phase;
use super::waiting::changed_before;
use super::{ListShared, PeerList};
use crate::admin::AdminResult;
use crate::choice::Choice;
use crate::error::{Error, Result};
use crate::events::Subscription;
use crate::now_or_later::{Later, NowOrLater};
use crate::peer::{PeerId, PeerRef};
use crate::request::{Outcome, Request};
use crate::session::{Reason, SessionEvent, SessionEventKind, SessionInner, SessionState};

/// How many times a failover asks the strategy for a peer before looking through the
/// offered peers itself.
const RECHOOSE_LIMIT: usize = 8;

/// The open sessions of a list, by the peer they are bound to.
#[derive(Default)]
pub(super) struct SessionTable {
    /// Bound sessions per peer id (by session id, so admin events come in id order), each
    /// with its `failover_requested` flag. A removed peer's entry goes with it (its
    /// sessions are asked to move then).
    by_peer: HashMap<PeerId, BTreeMap<u64, Arc<AtomicBool>>, RandomState>,
    /// Sessions not yet closed or declined (bound or not).
    open: usize,
    /// The last session id given out.
    last_id: u64,
}

impl SessionTable {
    /// Open sessions bound to `id`.
    pub(super) fn count(&self, id: &PeerId) -> usize {
        self.by_peer.get(id).map_or(0, BTreeMap::len)
    }

    /// Open sessions of the list.
    pub(super) fn open(&self) -> usize {
        self.open
    }

    fn insert(&mut self, peer: &PeerId, session: u64, flag: &Arc<AtomicBool>) {
        flag.store(false, Ordering::Release);
        self.by_peer
            .entry(peer.clone())
            .or_default()
            .insert(session, flag.clone());
    }

    fn remove(&mut self, peer: &PeerId, session: u64) {
        if let Some(sessions) = self.by_peer.get_mut(peer) {
            sessions.remove(&session);
            if sessions.is_empty() {
                self.by_peer.remove(peer);
            }
        }
    }
}

/// What a failover leaves behind: the peer the session was bound to (none when it was
/// bound to no peer already), and the peers it tried since its last `ok()`.
pub(crate) struct Left {
    pub(crate) peer: Option<PeerId>,
    pub(crate) tried: Vec<PeerId>,
}

impl Commit<'_> {
    /// Asks every session bound to `id` to move (the peer was removed): they stay bound
    /// to it, out of the table.
    pub(super) fn sessions_peer_removed(&mut self, id: &PeerId, reason: &str) {
        let Some(sessions) = self.state.sessions.by_peer.remove(id) else {
            return;
        };
        for (session, flag) in sessions {
            flag.store(true, Ordering::Release);
            self.session_event(SessionEventKind::FailoverRequested, session, id, reason);
        }
    }
}

impl ListShared {
    /// Registers a new session bound to `choice`'s peer; the listener hears `created`. A
    /// peer removed between the choose and now is asked at once to move.
    pub(crate) fn session_open(
        &self,
        list: &PeerList,
        choice: Choice,
        key: Option<Vec<u8>>,
    ) -> Arc<SessionInner> {
        let peer = choice.peer().clone();
        let current = choice.peer_ref();
        self.commit(|c| {
            let table = &mut c.state.sessions;
            table.last_id += 1;
            table.open += 1;
            let id = table.last_id;
            let inner = Arc::new(SessionInner {
                list: list.clone(),
                id,
                flag: Arc::new(AtomicBool::new(false)),
                key,
                state: Mutex::new(SessionState {
                    choice: Some(choice),
                    peer: peer.clone(),
                    tried: vec![peer.clone()],
                    ended: false,
                    failovers: 0,
                }),
            });
            c.bind_in_table(&inner, &peer, &current, "opened");
            inner
        })
    }

    /// Ends the session's current attempt for a failover: it leaves the table, the
    /// listener hears `terminated` with the reason, and the attempt ends (after the
    /// commit) as a `failure`, or as `cancelled` when an admin had asked the session to
    /// move (the move was asked for; it says nothing against the peer).
    /// `already-finished` when the session has ended.
    pub(crate) fn session_leave(&self, inner: &SessionInner, reason: &Reason) -> Result<Left> {
        let text = if reason.text().is_empty() {
            "failover"
        } else {
            reason.text()
        };
        let (left, attempt, asked) = self.commit(|c| {
            let mut state = inner.lock();
            if state.ended {
                return Err(inner.ended_error());
            }
            let attempt = state.choice.take();
            let peer = attempt.as_ref().map(|_| state.peer.clone());
            if let Some(p) = &peer {
                c.state.sessions.remove(p, inner.id);
                c.session_event(SessionEventKind::Terminated, inner.id, p, text);
            }
            let left = Left {
                peer,
                tried: state.tried.clone(),
            };
            let asked = inner.flag.load(Ordering::Acquire);
            Ok((left, attempt, asked))
        })?;
        if let Some(attempt) = attempt {
            attempt.count_failover();
            attempt.finish_session(if asked {
                Outcome::Cancelled
            } else {
                Outcome::Failure
            });
        }
        Ok(left)
    }

    /// Binds a failed-over session to `choice`'s peer; the listener hears `created`.
    /// When the session was closed meanwhile, the choice is given back
    /// (`already-finished`); when a concurrent failover bound it first, that binding
    /// stands and its peer is returned.
    pub(crate) fn session_bind(&self, inner: &Arc<SessionInner>, choice: Choice) -> Result<PeerId> {
        let peer = choice.peer().clone();
        let current = choice.peer_ref();
        let (result, unused) = self.commit(|c| {
            let mut state = inner.lock();
            if state.ended {
                let e = Error::AlreadyFinished(format!(
                    "session {} was closed while it failed over",
                    inner.id
                ));
                return (Err(e), Some(choice));
            }
            if state.choice.is_some() {
                return (Ok(state.peer.clone()), Some(choice));
            }
            state.choice = Some(choice);
            state.peer = peer.clone();
            state.failovers = state.failovers.saturating_add(1);
            if !state.tried.contains(&peer) {
                state.tried.push(peer.clone());
            }
            drop(state);
            c.bind_in_table(inner, &peer, &current, "failover");
            (Ok(peer), None)
        });
        if let Some(choice) = unused {
            choice.finish_session(Outcome::Cancelled);
        }
        result
    }

    /// Ends the session (close or decline): the listener hears `terminated` with
    /// `detail`, and the attempt ends with `outcome` (after the commit). Returns the peer
    /// it was (last) bound to; `already-finished` when it had ended already.
    pub(crate) fn session_end(
        &self,
        inner: &SessionInner,
        detail: &str,
        outcome: Outcome,
    ) -> Result<PeerId> {
        let (peer, attempt) = self.commit(|c| {
            let mut state = inner.lock();
            if state.ended {
                return Err(inner.ended_error());
            }
            state.ended = true;
            let attempt = state.choice.take();
            let peer = state.peer.clone();
            c.state.sessions.open -= 1;
            if attempt.is_some() {
                c.state.sessions.remove(&peer, inner.id);
                c.session_event(SessionEventKind::Terminated, inner.id, &peer, detail);
            }
            Ok((peer, attempt))
        })?;
        if let Some(attempt) = attempt {
            attempt.finish_session(outcome);
        }
        Ok(peer)
    }

    /// Admin `failover(id)`: asks every session bound to `id` to move. Success when some
    /// session was asked, no action required when none is bound there (or all were asked
    /// already); `peer-not-in-list` for an id not in the list.
    pub(super) fn failover_peer(&self, id: &str) -> Result<AdminResult> {
        let peer_id = PeerId::new(id)?;
        self.commit(|c| {
            if !c.state.peers.contains_key(&peer_id) {
                return Err(Error::PeerNotInList(peer_id.to_string()));
            }
            let asked: Vec<u64> = c
                .state
                .sessions
                .by_peer
                .get(&peer_id)
                .into_iter()
                .flatten()
                .filter(|(_, flag)| !flag.swap(true, Ordering::AcqRel))
                .map(|(session, _)| *session)
                .collect();
            if asked.is_empty() {
                return Ok(AdminResult::NoActionRequired);
            }
            for session in asked {
                c.session_event(
                    SessionEventKind::FailoverRequested,
                    session,
                    &peer_id,
                    "failover requested by admin",
                );
            }
            Ok(AdminResult::Success)
        })
    }

    /// The choose of a failover: a peer other than the one left, preferring peers not
    /// tried; at once, or a wait until `deadline`.
    pub(crate) fn choose_for_failover_now(
        &self,
        session: u64,
        left: &Left,
        deadline: Option<Instant>,
        key: Option<&[u8]>,
    ) -> NowOrLater<Result<Choice>> {
        if let Some(choice) = self.try_choose_other(left, key) {
            return NowOrLater::Now(Ok(choice));
        }
        if let Some(err) = self.failover_refusal(session, left.peer.as_ref()) {
            return NowOrLater::Now(Err(err));
        }
        if let Some(err) = self.cannot_wait_for_other(session, left, deadline) {
            // A peer may have come meanwhile.
            return NowOrLater::Now(self.try_choose_other(left, key).ok_or(err));
        }
        let deadline = deadline.expect("checked by cannot_wait_for_other");
        let Some(list) = self.this.upgrade() else {
            return NowOrLater::Now(Err(self.not_running()));
        };
        let left = Left {
            peer: left.peer.clone(),
            tried: left.tried.clone(),
        };
        let key = key.map(<[u8]>::to_vec);
        NowOrLater::Later(Later::new(async move {
            list.wait_for_other(session, &left, deadline, key.as_deref())
                .await
        }))
    }

    /// Why a failover cannot wait for another peer: the list is not running, it is
    /// fail-fast, or there is no deadline (both `no-peer-available`: a session that lost
    /// its peer needs one now or by a deadline).
    fn cannot_wait_for_other(
        &self,
        session: u64,
        left: &Left,
        deadline: Option<Instant>,
    ) -> Option<Error> {
        if !self.is_running() {
            return Some(self.not_running());
        }
        if self.fail_fast || deadline.is_none() {
            return Some(Error::NoPeerAvailable(self.no_other_message(session, left)));
        }
        None
    }

    fn no_other_message(&self, session: u64, left: &Left) -> String {
        let available = self.lock().tally.offered();
        match &left.peer {
            Some(peer) => format!(
                "{:?} peer list has no available peer other than {:?} for session {session} \
                 ({available} available)",
                self.name(),
                peer.as_str()
            ),
            None => format!(
                "{:?} peer list has no available peer for session {session}",
                self.name()
            ),
        }
    }

    async fn wait_for_other(
        &self,
        session: u64,
        left: &Left,
        deadline: Instant,
        key: Option<&[u8]>,
    ) -> Result<Choice> {
        let started = Instant::now();
        let mut timer: Option<futures_timer::Delay> = None;
        loop {
            if !self.is_running() {
                return Err(self.not_running());
            }
            let listener = self.changed.listen();
            if let Some(choice) = self.try_choose_other(left, key) {
                return Ok(choice);
            }
            let timer = timer.get_or_insert_with(|| {
                futures_timer::Delay::new(deadline.saturating_duration_since(Instant::now()))
            });
            let woke = changed_before(listener, timer).await;
            if !woke {
                return self.try_choose_other(left, key).ok_or_else(|| {
                    Error::Timeout(format!(
                        "timed out after {:?} waiting: {}",
                        Duration::from_millis(started.elapsed().as_millis() as u64),
                        self.no_other_message(session, left)
                    ))
                });
            }
        }
    }

    /// A peer for a failover now: the strategy's pick if it is neither the peer left nor
    /// tried (asked a few times, the shard key varied as retries vary it), else the offered
    /// peer with the fewest pending requests that was not tried, else one that was tried
    /// (never the peer left).
    fn try_choose_other(&self, left: &Left, key: Option<&[u8]>) -> Option<Choice> {
        let excluded = |id: &PeerId| left.peer.as_ref() == Some(id);
        let mut fallback: Option<Choice> = None;
        let mut varied = Vec::new();
        for attempt in 0..RECHOOSE_LIMIT {
            let mut request = Request::new();
            if let Some(k) = key {
                varied.clear();
                varied.extend_from_slice(k);
                varied.extend_from_slice(format!("#failover{attempt}").as_bytes());
                request = request.with_shard_key(&varied);
            }
            let Some(choice) = self.try_choose(&request) else {
                break;
            };
            if excluded(choice.peer()) {
                choice.finish_session(Outcome::Cancelled);
            } else if left.tried.contains(choice.peer()) {
                match &fallback {
                    None => fallback = Some(choice),
                    Some(_) => choice.finish_session(Outcome::Cancelled),
                }
            } else {
                if let Some(f) = fallback {
                    f.finish_session(Outcome::Cancelled);
                }
                return Some(choice);
            }
        }
        let untried = self.fewest_pending_offered(|id| !excluded(id) && !left.tried.contains(id));
        if let Some(peer) = untried {
            if let Some(choice) = self.start_on(&peer) {
                if let Some(f) = fallback {
                    f.finish_session(Outcome::Cancelled);
                }
                return Some(choice);
            }
        }
        if fallback.is_some() {
            return fallback;
        }
        self.fewest_pending_offered(|id| !excluded(id))
            .and_then(|peer| self.start_on(&peer))
    }

    /// The offered peer with the fewest pending requests among those `wanted` accepts
    /// (O(n): only failovers that the strategy could not serve come here).
    /// Peers at the per-peer circuit breaker's limit are left out.
    fn fewest_pending_offered(&self, wanted: impl Fn(&PeerId) -> bool) -> Option<PeerRef> {
        let below_limit = self.peer_limit_check();
        let state = self.lock();
        state
            .peers
            .iter()
            .filter(|(id, slot)| slot.offered && slot.phase == Phase::Retained && wanted(id))
            .filter_map(|(_, slot)| slot.peer.as_ref())
            .filter(|peer| below_limit(peer))
            .min_by_key(|peer| peer.pending())
            .cloned()
    }

    /// Starts a request on `peer` as `choose` would have; `None` when the list's
    /// `max_pending` circuit breaker has no place for it.
    fn start_on(&self, peer: &PeerRef) -> Option<Choice> {
        if !self.reserve_place() {
            return None;
        }
        let request = peer.start_request();
        // Started here, not by the strategy's choose: tell it (also when its choose counts
        // the requests it starts itself).
        if self.notify_pending {
            self.pending_changed(peer);
        }
        if self.notify_outcome {
            let others = u32::try_from(peer.pending().saturating_sub(1)).unwrap_or(u32::MAX);
            return Some(Choice::timed(request, self.stamp(), others));
        }
        Some(Choice::new(request))
    }
}

impl Commit<'_> {
    /// Puts a session bound to `peer` in the table and queues `created`; when the peer's
    /// record is gone (removed, or removed and added again, since it was chosen), asks the
    /// session at once to move.
    fn bind_in_table(
        &mut self,
        inner: &SessionInner,
        peer: &PeerId,
        current: &PeerRef,
        reason: &str,
    ) {
        self.state.sessions.insert(peer, inner.id, &inner.flag);
        self.session_event(SessionEventKind::Created, inner.id, peer, reason);
        let gone = match self.state.peers.get(peer) {
            None => true,
            Some(slot) => slot
                .peer
                .as_ref()
                .is_some_and(|p| !PeerRef::ptr_eq(p, current)),
        };
        if gone {
            self.state.sessions.remove(peer, inner.id);
            inner.flag.store(true, Ordering::Release);
            self.session_event(
                SessionEventKind::FailoverRequested,
                inner.id,
                peer,
                "the peer was removed",
            );
        }
    }
}

impl PeerList {
    /// Subscribes to session events (`created`, `terminated`, `failover-requested`; see
    /// [`crate::session`]), delivered as peer events are: outside the list's lock, in
    /// order, one at a time; the callback may call back into the list, and one that panics
    /// is skipped for that event. Keep the returned [`Subscription`]: dropping it
    /// unsubscribes.
    pub fn subscribe_sessions<F>(&self, callback: F) -> Subscription
    where
        F: Fn(&SessionEvent) + Send + Sync + 'static,
    {
        self.shared.session_events.subscribe(Arc::new(callback))
    }

    /// Admin: asks every open session bound to `id` to move to another peer (their
    /// [`failover_requested`](crate::session::Session::failover_requested) turns true and
    /// the session listener hears `failover-requested`); the sessions' owners fail them
    /// over. [`AdminResult::Success`] when a session was asked,
    /// [`AdminResult::NoActionRequired`] when none is bound there (or all were asked
    /// already); `peer-not-in-list` for an unknown id.
    pub fn failover(&self, id: &str) -> Result<AdminResult> {
        self.shared.failover_peer(id)
    }
}
