//! The one path every change of a list takes.
//!
//! [`ListShared::commit`] runs a change with the list's lock held and then finishes it in a
//! fixed order:
//!
//! 1. **lock** the list's state;
//! 2. **change** it (the closure): every peer record it touches is reconciled
//!    (`Commit::reconcile`, in `eligibility.rs`), which records the strategy's additions and
//!    withdrawals and the events to send;
//! 3. settle the panic floor (it may offer or withdraw ejected peers), hand the strategy its
//!    net batch (`Strategy::update`), and **queue the events**;
//! 4. **unlock**;
//! 5. strategy **`batch_end`** (where it builds and publishes its structure; an `update`
//!    that adds peers to a running list holds it until its second commit, which settles the
//!    added peers, so one update builds the structure once);
//! 6. **deliver** the events, peer events then session events (outside every lock; a
//!    subscriber may call back in);
//! 7. **wake** waiting `choose` calls, when a peer was offered or the list stopped.
//!
//! Timers for ejections made by the change are set after that (they call back into the
//! list when due).

use std::collections::HashMap;
use std::sync::MutexGuard;
use std::time::Instant;

use super::membership::State;
use super::ListShared;
use crate::events::{EventKind, PeerEvent};
use crate::peer::{Peer, PeerId, PeerRef};
use crate::session::{SessionEvent, SessionEventKind};

/// A change in progress: the locked state plus what the change must do once it ends.
pub(super) struct Commit<'a> {
    pub(super) list: &'a ListShared,
    pub(super) state: MutexGuard<'a, State>,
    /// Events to queue (only recorded when someone subscribed).
    events: Vec<PeerEvent>,
    recording: bool,
    /// Session events to queue (only recorded when someone subscribed to them).
    session_events: Vec<SessionEvent>,
    recording_sessions: bool,
    /// Peers the strategy starts offering, and stops offering (in order; netted at the
    /// end, since a peer may flip more than once in one change).
    pub(super) offered: Vec<PeerRef>,
    pub(super) withdrawn: Vec<PeerRef>,
    /// Waiting chooses should look again.
    wake: bool,
    /// Ejections whose end must be scheduled.
    pub(super) timers: Vec<Instant>,
    /// The operation goes on in a later commit, which ends the strategy's batch.
    hold_batch: bool,
}

impl<'a> Commit<'a> {
    /// Queues an event (when anyone listens).
    pub(super) fn event(&mut self, kind: EventKind, peer: &PeerId, detail: impl Into<String>) {
        if self.recording {
            self.events.push(PeerEvent {
                kind,
                peer: peer.clone(),
                detail: detail.into(),
            });
        }
    }

    /// Queues a session event (when anyone listens to session events).
    pub(super) fn session_event(
        &mut self,
        kind: SessionEventKind,
        session: u64,
        peer: &PeerId,
        reason: &str,
    ) {
        if self.recording_sessions {
            self.session_events.push(SessionEvent {
                kind,
                session,
                peer: peer.clone(),
                reason: reason.to_owned(),
            });
        }
    }

    /// Whether events are recorded (someone subscribed).
    pub(super) fn is_recording(&self) -> bool {
        self.recording
    }

    /// Waiting chooses should look again when the change is done.
    pub(super) fn wake(&mut self) {
        self.wake = true;
    }

    /// The operation this commit belongs to goes on in a later commit (an `update` settles
    /// its additions after calling the transport): leave the strategy's `batch_end` to
    /// that one, so the whole operation builds the strategy's structure once. The caller
    /// must end the batch ([`ListShared::end_batch`]).
    pub(super) fn hold_batch(&mut self) {
        self.hold_batch = true;
    }
}

/// Nets a change's offers and withdrawals: a peer's offer alternates (offered, withdrawn,
/// offered, ...), so equal counts cancel out.
fn net(mut offered: Vec<PeerRef>, mut withdrawn: Vec<PeerRef>) -> (Vec<PeerRef>, Vec<PeerRef>) {
    if offered.is_empty() || withdrawn.is_empty() {
        return (offered, withdrawn);
    }
    let mut balance: HashMap<*const Peer, i32> = HashMap::new();
    for p in &offered {
        *balance.entry(&**p as *const Peer).or_default() += 1;
    }
    for p in &withdrawn {
        *balance.entry(&**p as *const Peer).or_default() -= 1;
    }
    let mut keep = |p: &PeerRef, sign: i32| match balance.get_mut(&(&**p as *const Peer)) {
        Some(b) if *b == sign => {
            *b = 0; // once
            true
        }
        _ => false,
    };
    offered.retain(|p| keep(p, 1));
    withdrawn.retain(|p| keep(p, -1));
    (offered, withdrawn)
}

impl ListShared {
    /// Runs `change` as one commit (see the module docs); returns what it returns.
    pub(super) fn commit<R>(&self, change: impl FnOnce(&mut Commit<'_>) -> R) -> R {
        let mut commit = Commit {
            list: self,
            state: self.lock(),
            events: Vec::new(),
            recording: self.events.is_recording(),
            session_events: Vec::new(),
            recording_sessions: self.session_events.is_recording(),
            offered: Vec::new(),
            withdrawn: Vec::new(),
            wake: false,
            timers: Vec::new(),
            hold_batch: false,
        };
        let result = change(&mut commit);
        commit.settle_panic_floor();
        if let Some(breakers) = &self.breakers {
            breakers.set_offered(commit.state.tally.offered());
        }
        let Commit {
            mut state,
            events,
            session_events,
            offered,
            withdrawn,
            wake,
            timers,
            hold_batch,
            ..
        } = commit;
        let (added, removed) = net(offered, withdrawn);
        // The list's strategy, or each locality's when the list routes (a custom strategy
        // that panics loses this batch, and only that).
        let (strategy_changed, switched) = self.hand_over(&mut state, &added, &removed);
        let queued = !events.is_empty();
        if queued {
            self.events.push(events);
        }
        let sessions_queued = !session_events.is_empty();
        if sessions_queued {
            self.session_events.push(session_events);
        }
        drop(state);
        if strategy_changed && !hold_batch {
            self.end_batch();
        }
        if queued {
            self.events.deliver();
        }
        if sessions_queued {
            self.session_events.deliver();
        }
        if wake || switched || !added.is_empty() {
            self.changed.notify(usize::MAX);
        }
        for until in timers {
            self.schedule_restoration(until);
        }
        result
    }
}

impl ListShared {
    /// The strategies' `batch_end` (a panicking custom strategy loses only its batch).
    pub(super) fn end_batch(&self) {
        self.end_batches();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::test_support::peers;

    #[test]
    fn flips_in_one_change_net_out() {
        let ps = peers(&["a", "b", "c"]);
        let offered = vec![ps[0].clone(), ps[1].clone(), ps[0].clone()];
        let withdrawn = vec![ps[0].clone(), ps[2].clone()];
        let (added, removed) = net(offered, withdrawn);
        let ids = |v: &[PeerRef]| v.iter().map(|p| p.id().to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&added), ["a", "b"]);
        assert_eq!(ids(&removed), ["c"]);
    }
}
