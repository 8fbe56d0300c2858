//! Membership and lifecycle: the peer records, `start`, `stop`, `update`, retaining and
//! releasing through the transport, and the transport's status reports.
//!
//! Retaining a batch (a `start`, the additions of an `update`) takes the list's lock twice
//! whatever its size: once to record the peers as being retained, once to settle them after
//! the transport's `retain` calls, which run with no lock held.

use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;

use foldhash::fast::RandomState;
use std::sync::atomic::Ordering;

use indexmap::IndexMap;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::commit::Commit;
use super::eligibility::{Class, Restoration, Tally};
use super::{call_transport, ListShared};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::peer::{ConnectionStatus, PeerId, PeerRef, PeerSpec, Retention};
use crate::transport::Subscriber;

/// Everything the list's lock guards.
pub(super) struct State {
    /// The peer records. Removal swaps the last record into the gap (O(1)); `Slot::seq`
    /// keeps the order they were added in, for introspection.
    pub(super) peers: IndexMap<PeerId, Slot, RandomState>,
    next_seq: u64,
    pub(super) rng: StdRng,
    /// Ids an admin disabled; kept across removals so a re-added peer stays disabled.
    pub(super) disabled: HashSet<PeerId, RandomState>,
    /// How many records are in each class, and the panic floor.
    pub(super) tally: Tally,
    /// When ejected peers are due back (earliest first); stale entries are skipped.
    pub(super) restorations: BinaryHeap<Restoration>,
    /// Open sessions per peer (see `sessions.rs`).
    pub(super) sessions: super::sessions::SessionTable,
    /// Localities and their counts (see `routing.rs`).
    pub(super) routing: super::routing::RoutingState,
    /// The offered membership, when the list subsets (see `subsetting.rs`).
    pub(super) subset: Option<super::subsetting::Subsetting>,
}

/// One peer of the list.
pub(super) struct Slot {
    /// When it was added (introspection order).
    pub(super) seq: u64,
    pub(super) weight: u32,
    /// The retained (or being retained) peer; `None` while uninitialized.
    pub(super) peer: Option<PeerRef>,
    pub(super) phase: Phase,
    /// The class it was last reconciled into (what the tally counts it as).
    pub(super) class: Class,
    /// The status the list last acted on (events are sent when it changes).
    pub(super) seen: ConnectionStatus,
    /// Whether the strategy offers it.
    pub(super) offered: bool,
    /// Ejected until then, as a stamp of the list's clock (`ListShared::stamp_at`); 0 =
    /// not ejected.
    pub(super) ejected_until: u64,
    /// How many times it has been ejected (the next ejection lasts longer).
    pub(super) ejections: u32,
    /// Its locality (priority level and zone; see `routing.rs`).
    pub(super) locality: super::routing::LocalityId,
    /// Its zone as given (boxed: one word in every record, an allocation only for peers
    /// with a zone). Its priority is its locality's.
    pub(super) zone: Option<Box<Arc<str>>>,
    /// Its id's metric series (when the list keeps metrics), for as long as it is listed.
    pub(super) series: Option<std::sync::Arc<crate::metrics::PeerSeries>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Uninitialized,
    Retaining,
    Retained,
}

impl Slot {
    fn new(seq: u64, peer: &NewPeer, locality: super::routing::LocalityId) -> Slot {
        Slot {
            seq,
            weight: peer.weight,
            locality,
            zone: peer.zone.clone().map(Box::new),
            peer: None,
            phase: Phase::Uninitialized,
            class: Class::Idle,
            seen: ConnectionStatus::Unavailable,
            offered: false,
            ejected_until: 0,
            ejections: 0,
            series: None,
        }
    }

    /// The status the list reports for its peer `peer`: the one it last acted on once the
    /// peer is retained (so it agrees with what the list offers and counts), the
    /// transport's latest report while it is being retained.
    pub(super) fn status(&self, peer: &PeerRef) -> ConnectionStatus {
        if self.phase == Phase::Retained {
            self.seen
        } else {
            peer.connection_status()
        }
    }

    pub(super) fn holds(&self, peer: &PeerRef) -> bool {
        self.peer.as_ref().is_some_and(|p| PeerRef::ptr_eq(p, peer))
    }
}

impl State {
    pub(super) fn new(
        capacity: usize,
        seed: Option<u64>,
        subset: Option<super::subsetting::Subsetting>,
    ) -> State {
        State {
            peers: IndexMap::with_capacity_and_hasher(capacity, RandomState::default()),
            next_seq: 0,
            rng: match seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_os_rng(),
            },
            disabled: HashSet::default(),
            tally: Tally::default(),
            restorations: BinaryHeap::new(),
            sessions: Default::default(),
            routing: Default::default(),
            subset,
        }
    }

    /// Takes every retained peer out of its record (for releasing them when the list is
    /// dropped).
    pub(super) fn take_retained(&mut self) -> Vec<PeerRef> {
        self.peers
            .values_mut()
            .filter(|s| s.phase == Phase::Retained)
            .filter_map(|s| s.peer.take())
            .collect()
    }
}

/// A validated addition.
#[derive(Debug, Clone)]
pub(super) struct NewPeer {
    pub(super) id: PeerId,
    pub(super) weight: u32,
    pub(super) zone: Option<Arc<str>>,
    pub(super) priority: u32,
}

/// Checks one addition: a valid id, a weight of at least 1, a valid zone.
pub(super) fn validate_spec(spec: PeerSpec) -> Result<NewPeer> {
    if spec.weight == 0 {
        return Err(Error::InvalidArgument(format!(
            "peer {:?} has weight 0; weights start at 1",
            spec.id
        )));
    }
    let id = PeerId::new(&spec.id)?;
    let zone = match spec.zone.as_deref() {
        None | Some("") => None,
        Some(z) => {
            super::routing::validate_zone(z)
                .map_err(|e| Error::InvalidArgument(format!("peer {:?}: {e}", spec.id)))?;
            Some(Arc::from(z))
        }
    };
    Ok(NewPeer {
        id,
        weight: spec.weight,
        zone,
        priority: spec.priority,
    })
}

/// What a change of the records leaves to do outside the lock: peers to release, peers to
/// retain (with their record's index), and whether the strategy's batch is held.
type RecordChange = (Vec<Subscriber>, Vec<(Subscriber, usize)>, bool);

impl Commit<'_> {
    /// Removes records, then adds records (retaining them when the list runs): the work
    /// of an update. Failures go to `errors` in that order, `invalid` (additions that failed
    /// validation) between them.
    fn change_records(
        &mut self,
        removals: impl IntoIterator<Item = (Result<PeerId>, &'static str)>,
        invalid: Vec<Error>,
        mut additions: Vec<NewPeer>,
        errors: &mut Vec<Error>,
    ) -> RecordChange {
        let mut to_release = Vec::new();
        for (id, detail) in removals {
            match id.and_then(|id| self.remove(&id, detail)) {
                Ok(Some(peer)) => to_release.push(Subscriber::new(peer)),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        errors.extend(invalid);
        let running = self.list.is_running();
        if running && self.list.shuffle {
            additions.shuffle(&mut self.state.rng);
        }
        let held = running && !additions.is_empty();
        if held {
            self.hold_batch();
        }
        self.state.peers.reserve(additions.len());
        let mut to_retain = Vec::with_capacity(if running { additions.len() } else { 0 });
        for peer in additions {
            match self.insert(peer) {
                Ok(i) if running => to_retain.push(self.begin_retain(i)),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        (to_release, to_retain, held)
    }

    /// Records the peer at index `i` as being retained (the caller calls the transport
    /// after the commit, then settles it at that index).
    fn begin_retain(&mut self, i: usize) -> (Subscriber, usize) {
        let (id, slot) = self
            .state
            .peers
            .get_index_mut(i)
            .expect("a record to retain");
        let peer = self
            .list
            .new_peer(id.clone(), slot.weight, slot.series.clone());
        peer.set_locality(slot.locality);
        slot.peer = Some(peer.clone());
        slot.phase = Phase::Retaining;
        self.reconcile_at(i);
        (Subscriber::new(peer), i)
    }

    /// Removes `id`'s record; returns its peer when the transport must release it.
    pub(super) fn remove(&mut self, id: &PeerId, detail: &str) -> Result<Option<PeerRef>> {
        let Some(mut slot) = self.state.peers.swap_remove(id) else {
            return Err(Error::PeerNotInList(id.to_string()));
        };
        self.forget(&mut slot);
        self.state.routing.record_removed(slot.locality);
        self.event(EventKind::Removed, id, detail);
        self.sessions_peer_removed(id, if detail.is_empty() { "removed" } else { detail });
        let peer = slot.peer.take();
        if let Some(p) = &peer {
            p.set_retention(Retention::Released);
        }
        // A peer still being retained is released by its retainer, which will find its
        // record gone.
        Ok(peer.filter(|_| slot.phase == Phase::Retained))
    }

    /// Settles a batch the transport retained: each peer becomes retained (and, if its
    /// transport reported it available, offered), is released at once if its record went
    /// away meanwhile, or leaves the list if `retain` failed (`failed`: index into `subs`
    /// and the error).
    fn settle(
        &mut self,
        subs: Vec<(Subscriber, usize)>,
        failed: Vec<(usize, Error)>,
        errors: &mut Vec<Error>,
    ) -> Vec<Subscriber> {
        let mut release_now = Vec::new();
        let mut failed = failed.into_iter().peekable();
        for (n, (sub, index)) in subs.into_iter().enumerate() {
            let error = failed.next_if(|(at, _)| *at == n).map(|(_, e)| e);
            let peer = sub.peer();
            // Where the record was when it began retaining, unless a removal (a re-entrant
            // one from the transport, or another thread's) moved it meanwhile.
            let peers = &self.state.peers;
            let at = Some(index)
                .filter(|&i| peers.get_index(i).is_some_and(|(_, s)| s.holds(peer)))
                .or_else(|| {
                    peers
                        .get_index_of(peer.id())
                        .filter(|&i| peers[i].holds(peer))
                });
            match (error, at) {
                (None, Some(i)) => {
                    self.state.peers[i].phase = Phase::Retained;
                    // From now on reports take the lock; the status read by `reconcile`
                    // below includes every report made before (see `Peer::retention`).
                    peer.set_retention(Retention::Retained);
                    self.reconcile_at(i);
                }
                // Removed, or the list stopped, while the transport was retaining it.
                (None, None) => release_now.push(sub),
                (Some(e), Some(_)) => {
                    // Left out of the list (as yarpc): subscribers saw it added, so they
                    // hear it leave.
                    let _ = self.remove(&peer.id().clone(), &e.to_string());
                    errors.push(e);
                }
                (Some(e), None) => errors.push(e),
            }
        }
        release_now
    }

    /// Adds a record for a validated peer; `Err` when the id is in the list already.
    pub(super) fn insert(&mut self, peer: NewPeer) -> Result<usize> {
        let seq = self.state.next_seq;
        if let Some(existing) = self.state.peers.get_key_value(&peer.id) {
            return Err(Error::PeerAlreadyInList(existing.0.to_string()));
        }
        let locality =
            self.state
                .routing
                .locality_for(&self.list.routing, peer.priority, peer.zone.as_ref());
        let series = self.list.metrics.as_ref().map(|m| m.series_for(&peer.id));
        let (i, _) = self.state.peers.insert_full(
            peer.id.clone(),
            Slot {
                series,
                ..Slot::new(seq, &peer, locality)
            },
        );
        self.state.routing.record_added(locality);
        self.state.next_seq += 1;
        self.count_new(i);
        if self.is_recording() {
            let id = self
                .state
                .peers
                .get_index(i)
                .expect("just inserted")
                .0
                .clone();
            self.event(EventKind::Added, &id, "");
        }
        Ok(i)
    }
}

impl ListShared {
    pub(super) fn start(&self) -> Result<()> {
        let to_retain = self.commit(|c| {
            if c.list.is_running() {
                return Err(Error::AlreadyStarted(format!(
                    "{:?} peer list is already running",
                    self.name()
                )));
            }
            self.running.store(true, Ordering::Release);
            let mut subs: Vec<(Subscriber, usize)> = Vec::with_capacity(c.state.peers.len());
            for i in 0..c.state.peers.len() {
                if c.state.peers[i].peer.is_none() {
                    subs.push(c.begin_retain(i));
                }
            }
            if self.shuffle {
                subs.shuffle(&mut c.state.rng);
            }
            Ok(subs)
        })?;
        let mut errors = Vec::new();
        self.retain_all(to_retain, &mut errors);
        Error::combine(errors)
    }

    pub(super) fn stop(&self) -> Result<()> {
        let to_release = self.commit(|c| {
            if !c.list.is_running() {
                return Err(self.not_running());
            }
            self.running.store(false, Ordering::Release);
            let ids: Vec<PeerId> = c.state.peers.keys().cloned().collect();
            let mut to_release = Vec::new();
            for id in &ids {
                let slot = c.state.peers.get_mut(id).expect("listed above");
                if slot.peer.is_none() {
                    continue;
                }
                let retained = slot.phase == Phase::Retained;
                slot.phase = Phase::Uninitialized;
                let was_available = slot.seen == ConnectionStatus::Available;
                slot.seen = ConnectionStatus::Unavailable;
                if was_available {
                    c.event(EventKind::Unavailable, id, "the list stopped");
                }
                // Idle now: withdrawn from the strategy (it still has its peer for that).
                c.reconcile(id);
                let slot = c.state.peers.get_mut(id).expect("listed above");
                let peer = slot.peer.take().expect("checked above");
                peer.set_retention(Retention::Released);
                // A peer still being retained is released by its retainer, which will
                // find its record emptied.
                if retained {
                    to_release.push(Subscriber::new(peer));
                }
            }
            c.wake();
            Ok(to_release)
        })?;
        let mut errors = Vec::new();
        for sub in to_release {
            self.release(&sub, &mut errors);
        }
        Error::combine(errors)
    }

    /// `additions` are validated already (`PeerList::update`); `invalid` holds what failed
    /// validation (reported after the removals' failures, as the order of the work). On a
    /// subsetting list they change the offered membership, and the records follow its
    /// subset (`subsetting.rs`).
    pub(super) fn update(
        &self,
        additions: Vec<NewPeer>,
        removals: Vec<String>,
        invalid: Vec<Error>,
    ) -> Result<()> {
        let mut errors = Vec::new();
        let change = self.commit(|c| {
            if c.subsets() {
                let (removals, additions) = c.offer(removals, additions, invalid, &mut errors);
                let removals = removals.into_iter().map(|(id, detail)| (Ok(id), detail));
                return c.change_records(removals, Vec::new(), additions, &mut errors);
            }
            let removals = removals.iter().map(|raw| (PeerId::new(raw), ""));
            c.change_records(removals, invalid, additions, &mut errors)
        });
        self.finish_change(change, &mut errors);
        Error::combine(errors)
    }

    /// After a [`Commit::change_records`]: releases the removed peers and retains the added
    /// ones (no lock held), then ends the strategy's batch the change held.
    fn finish_change(&self, change: RecordChange, errors: &mut Vec<Error>) {
        let (to_release, to_retain, held) = change;
        for sub in to_release {
            self.release(&sub, errors);
        }
        self.retain_all(to_retain, errors);
        if held {
            self.end_batch();
        }
    }

    /// Calls the transport's `retain` for each peer (no lock held), then settles them all
    /// in one commit, and releases those whose records went away meanwhile.
    fn retain_all(&self, subs: Vec<(Subscriber, usize)>, errors: &mut Vec<Error>) {
        if subs.is_empty() {
            return;
        }
        let mut failed = Vec::new();
        for (n, (sub, _)) in subs.iter().enumerate() {
            let id = sub.peer().id();
            if let Err(e) = call_transport("retain", id, || self.transport.retain(id, sub)) {
                failed.push((n, e));
            }
        }
        let release_now = self.commit(|c| c.settle(subs, failed, errors));
        for sub in release_now {
            self.release(&sub, errors);
        }
    }

    pub(super) fn release(&self, sub: &Subscriber, errors: &mut Vec<Error>) {
        let id = sub.peer().id();
        if let Err(e) = call_transport("release", id, || self.transport.release(id, sub)) {
            errors.push(e);
        }
    }

    /// A transport reported a new status for `peer`, which is retained: act on it.
    /// Returns whether the report was current (the peer is still this list's).
    pub(crate) fn status_reported(&self, peer: &PeerRef) -> bool {
        self.commit(|c| {
            if !c.state.peers.get(peer.id()).is_some_and(|s| s.holds(peer)) {
                return false;
            }
            c.reconcile(peer.id());
            true
        })
    }

    /// Admin `delete`: removes `id`'s record (as `update(None, [id])`) and forgets its
    /// admin state; on a subsetting list it leaves the offered membership, and a
    /// replacement may enter the subset.
    pub(super) fn delete(&self, id: &str) -> Result<crate::AdminResult> {
        let peer_id = PeerId::new(id)?;
        let mut errors = Vec::new();
        let change = self.commit(|c| {
            let forgot = c.state.disabled.remove(&peer_id);
            if c.subsets() {
                return match c.withdraw_offer(&peer_id) {
                    Some((removals, additions)) => {
                        let removals = removals.into_iter().map(|(removed, detail)| {
                            let detail = if removed == peer_id {
                                "deleted by admin"
                            } else {
                                detail
                            };
                            (Ok(removed), detail)
                        });
                        Ok(c.change_records(removals, Vec::new(), additions, &mut errors))
                    }
                    None if forgot => Ok(Default::default()),
                    None => Err(Error::PeerNotInList(peer_id.to_string())),
                };
            }
            match c.remove(&peer_id, "deleted by admin") {
                Ok(peer) => Ok((
                    peer.map(Subscriber::new).into_iter().collect(),
                    Vec::new(),
                    false,
                )),
                Err(_) if forgot => Ok(Default::default()),
                Err(e) => Err(e),
            }
        })?;
        self.finish_change(change, &mut errors);
        Error::combine(errors)?;
        Ok(crate::AdminResult::Success)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_record_stays_within_seven_words() {
        // The change path keeps 100 000 records; zone and priority add one word at most
        // (the locality fits in padding, the zone is boxed).
        assert!(std::mem::size_of::<super::Slot>() <= 56);
    }
}
