//! A list's metric state: one [`PeerSeries`] per peer id, and [`ListMetrics`] for the list.
//!
//! What a series keeps is only what the peers do not keep already. A [`Peer`] counts its
//! choices, its failures and its requests in flight (the hot path's own atomics); its series
//! adds the `declined` and `cancelled` outcomes, ejections, picks skipped by the per-peer
//! circuit breaker, sessions that failed over away from it, and latencies. A peer id may be retained several times (a restart, a
//! removal and re-add while old requests finish): every [`Peer`] of the id is attached to
//! the one series while it lives, and its counters are added to the series' totals when it
//! is freed, so the counters of an id never go back while the id has a series.
//!
//! `ok` outcomes are not counted anywhere: a finished request is `ok` unless it is counted
//! as one of the others, so `ok = chosen − pending − failure − declined − cancelled`,
//! worked out at scrape time (and never allowed to go back: the reads are not one atomic
//! snapshot).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use foldhash::fast::RandomState;

use super::latency::{LatencyHistogram, LatencySnapshot};
use crate::peer::{Peer, PeerId, PeerRef};
use crate::request::Outcome;

/// A peer attached to a series (see [`PeerSeries::attach`]).
struct Attached(*const Peer);

// SAFETY: the pointer is only dereferenced under the series' lock, which a peer's drop takes
// to detach itself before the peer is freed; `Peer` is `Sync`.
unsafe impl Send for Attached {}

/// Peers attached to a series, and the counters of the ones already freed.
struct Live {
    peers: Vec<Attached>,
    chosen: u64,
    failures: u64,
}

/// The metric series of one peer id of one list.
pub(crate) struct PeerSeries {
    id: PeerId,
    live: Mutex<Live>,
    declined: AtomicU64,
    cancelled: AtomicU64,
    ejections: AtomicU64,
    /// Picks of this peer that the per-peer circuit breaker took back.
    limit_skips: AtomicU64,
    /// Sessions that failed over away from this peer.
    failovers: AtomicU64,
    latency: Arc<LatencyHistogram>,
    /// The highest `ok` count exported so far.
    ok_exported: AtomicU64,
}

/// A series' counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SeriesCounts {
    pub(crate) chosen: u64,
    pub(crate) pending: u64,
    pub(crate) ok: u64,
    pub(crate) failure: u64,
    pub(crate) declined: u64,
    pub(crate) cancelled: u64,
    pub(crate) ejections: u64,
    pub(crate) limit_skips: u64,
    pub(crate) failovers: u64,
}

impl SeriesCounts {
    /// Adds another series' counts (collapsing per-peer series).
    pub(crate) fn merge(&mut self, o: &SeriesCounts) {
        self.chosen += o.chosen;
        self.pending += o.pending;
        self.ok += o.ok;
        self.failure += o.failure;
        self.declined += o.declined;
        self.cancelled += o.cancelled;
        self.ejections += o.ejections;
        self.limit_skips += o.limit_skips;
        self.failovers += o.failovers;
    }
}

impl PeerSeries {
    fn new(id: PeerId, latency: Arc<LatencyHistogram>) -> PeerSeries {
        PeerSeries {
            id,
            live: Mutex::new(Live {
                peers: Vec::new(),
                chosen: 0,
                failures: 0,
            }),
            declined: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            limit_skips: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            latency,
            ok_exported: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The peer id.
    pub(crate) fn id(&self) -> &PeerId {
        &self.id
    }

    /// A new peer of this id: its counters count from now on.
    pub(crate) fn attach(&self, peer: &PeerRef) {
        self.lock().peers.push(Attached(&**peer as *const Peer));
    }

    /// `peer` is being freed: its counters move to the totals.
    pub(crate) fn detach(&self, peer: &Peer) {
        let mut live = self.lock();
        let ptr = peer as *const Peer;
        if let Some(at) = live.peers.iter().position(|a| a.0 == ptr) {
            live.peers.swap_remove(at);
            live.chosen += peer.chosen();
            live.failures += peer.failures();
        }
    }

    /// Counts a `declined` or `cancelled` outcome.
    pub(crate) fn record_outcome(&self, outcome: Outcome) {
        match outcome {
            Outcome::Declined => self.declined.fetch_add(1, Ordering::Relaxed),
            Outcome::Cancelled => self.cancelled.fetch_add(1, Ordering::Relaxed),
            Outcome::Ok | Outcome::Failure => 0,
        };
    }

    /// Records a request's latency (given to `finish`, or measured).
    #[inline]
    pub(crate) fn record_latency(&self, latency: Duration) {
        self.latency.record(latency);
    }

    /// Counts an ejection.
    pub(crate) fn ejected(&self) {
        self.ejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a pick the per-peer circuit breaker took back.
    pub(crate) fn limit_skipped(&self) {
        self.limit_skips.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a session that failed over away from this peer.
    pub(crate) fn failed_over(&self) {
        self.failovers.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests in flight to this id now (any of its peers).
    pub(crate) fn pending(&self) -> u64 {
        let live = self.lock();
        live.peers
            .iter()
            // SAFETY: attached peers are alive while the lock is held (see `Attached`).
            .map(|a| unsafe { &*a.0 }.pending() as u64)
            .sum()
    }

    /// The counters now. Read in an order that never counts a request as `ok` before it
    /// ended: choices first, then requests in flight, then the other outcomes (which are
    /// counted before a request stops being in flight).
    pub(crate) fn counts(&self) -> SeriesCounts {
        let (chosen, pending, failure) = {
            let live = self.lock();
            // SAFETY (all three): attached peers are alive while the lock is held.
            let chosen: u64 = live.chosen
                + live
                    .peers
                    .iter()
                    .map(|a| unsafe { &*a.0 }.chosen())
                    .sum::<u64>();
            let pending: u64 = live
                .peers
                .iter()
                .map(|a| unsafe { &*a.0 }.pending() as u64)
                .sum();
            let failure: u64 = live.failures
                + live
                    .peers
                    .iter()
                    .map(|a| unsafe { &*a.0 }.failures())
                    .sum::<u64>();
            (chosen, pending, failure)
        };
        let declined = self.declined.load(Ordering::Relaxed);
        let cancelled = self.cancelled.load(Ordering::Relaxed);
        let derived = chosen.saturating_sub(pending + failure + declined + cancelled);
        let ok = self
            .ok_exported
            .fetch_max(derived, Ordering::Relaxed)
            .max(derived);
        SeriesCounts {
            chosen,
            pending,
            ok,
            failure,
            declined,
            cancelled,
            ejections: self.ejections.load(Ordering::Relaxed),
            limit_skips: self.limit_skips.load(Ordering::Relaxed),
            failovers: self.failovers.load(Ordering::Relaxed),
        }
    }

    /// The latency histogram now.
    pub(crate) fn latency(&self) -> LatencySnapshot {
        self.latency.snapshot()
    }
}

/// The metric state of one list (see the [module docs](self)).
pub(crate) struct ListMetrics {
    peer_labels: bool,
    /// Every id's series while it lives (the list's records, and peers still finishing
    /// requests after their record went).
    book: Mutex<HashMap<PeerId, Weak<PeerSeries>, RandomState>>,
    /// The one histogram every series shares when per-peer labels are off.
    shared_latency: Option<Arc<LatencyHistogram>>,
    retries: AtomicU64,
    budget_exhausted: AtomicU64,
}

impl ListMetrics {
    pub(crate) fn new(peer_labels: bool) -> ListMetrics {
        ListMetrics {
            peer_labels,
            book: Mutex::new(HashMap::default()),
            shared_latency: (!peer_labels).then(LatencyHistogram::new),
            retries: AtomicU64::new(0),
            budget_exhausted: AtomicU64::new(0),
        }
    }

    fn book(&self) -> MutexGuard<'_, HashMap<PeerId, Weak<PeerSeries>, RandomState>> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether series carry a `peer` label.
    pub(crate) fn peer_labels(&self) -> bool {
        self.peer_labels
    }

    /// The series of `id`: the live one if there is one (a peer of that id still finishing
    /// requests), else a new one.
    pub(crate) fn series_for(&self, id: &PeerId) -> Arc<PeerSeries> {
        let mut book = self.book();
        if let Some(series) = book.get(id).and_then(Weak::upgrade) {
            return series;
        }
        let latency = self
            .shared_latency
            .clone()
            .unwrap_or_else(LatencyHistogram::new);
        let series = Arc::new(PeerSeries::new(id.clone(), latency));
        if book.len() >= 64 && book.len() == book.capacity() {
            // About to grow: forget the series that ended first (amortized O(1)).
            book.retain(|_, s| s.strong_count() > 0);
        }
        book.insert(id.clone(), Arc::downgrade(&series));
        series
    }

    /// Live series whose id is not in `current` (removed peers still finishing requests).
    pub(crate) fn departed(&self, current: &HashSet<&PeerId>) -> Vec<Arc<PeerSeries>> {
        let mut book = self.book();
        book.retain(|_, s| s.strong_count() > 0);
        book.iter()
            .filter(|(id, _)| !current.contains(id))
            .filter_map(|(_, s)| s.upgrade())
            .collect()
    }

    /// Counts a retry (an attempt after the first).
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a retry the budget refused.
    pub(crate) fn budget_refused(&self) {
        self.budget_exhausted.fetch_add(1, Ordering::Relaxed);
    }

    /// Retries made, and retries the budget refused.
    pub(crate) fn retry_counts(&self) -> (u64, u64) {
        (
            self.retries.load(Ordering::Relaxed),
            self.budget_exhausted.load(Ordering::Relaxed),
        )
    }

    /// The latency of the whole list when per-peer labels are off.
    pub(crate) fn shared_latency(&self) -> Option<LatencySnapshot> {
        self.shared_latency.as_ref().map(|h| h.snapshot())
    }
}
