//! Peers: validated ids, connection status, and the list's record of a retained peer.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use crate::error::{Error, Result};
use crate::list::{Admission, ListShared};
use crate::metrics::PeerSeries;
use crate::sync::FreeCanary;

/// Longest accepted peer id, in bytes.
pub const MAX_PEER_ID_LEN: usize = 1024;

/// The most items one call takes in a sequence argument (the peers of an update, an
/// updater's or an Upstream's backends, etcd endpoints): about a million, far above any
/// real peer set. The bindings read foreign sequences item by item up to this bound (never
/// sized by the caller's claimed length), and refuse more with `invalid-argument`.
pub const MAX_ITEMS_PER_CALL: usize = 1 << 20;

/// An opaque peer identifier, usually `host:port`: 1..=1024 bytes of UTF-8 without NUL.
///
/// Cheap to clone (shared string).
///
/// ```
/// use peerlb::PeerId;
/// assert_eq!(PeerId::new("10.0.0.1:80").unwrap().as_str(), "10.0.0.1:80");
/// assert!(PeerId::new("").is_err());
/// assert!(PeerId::new("a\0b").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(Arc<str>);

impl PeerId {
    /// Validates and wraps an id. Errors with [`Error::InvalidArgument`] when it is empty,
    /// longer than [`MAX_PEER_ID_LEN`] bytes, or contains NUL.
    pub fn new(id: impl AsRef<str>) -> Result<PeerId> {
        let id = id.as_ref();
        if id.is_empty() {
            return Err(Error::InvalidArgument("peer id is empty".into()));
        }
        if id.len() > MAX_PEER_ID_LEN {
            return Err(Error::InvalidArgument(format!(
                "peer id is {} bytes long; the limit is {MAX_PEER_ID_LEN}",
                id.len()
            )));
        }
        if id.contains('\0') {
            return Err(Error::InvalidArgument(format!(
                "peer id {id:?} contains a NUL byte"
            )));
        }
        Ok(PeerId(Arc::from(id)))
    }

    /// Validates raw bytes (as C and JS hand them over): they must also be UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Result<PeerId> {
        let s = std::str::from_utf8(bytes)
            .map_err(|e| Error::InvalidArgument(format!("peer id is not valid UTF-8: {e}")))?;
        PeerId::new(s)
    }

    /// The id as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many clones of this id exist (the loom models check that a peer, which holds
    /// one, was freed).
    #[cfg(all(test, peerlb_loom))]
    pub(crate) fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PeerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for PeerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for PeerId {
    type Err = Error;
    fn from_str(s: &str) -> Result<PeerId> {
        PeerId::new(s)
    }
}

/// Whether a peer can take requests, as its transport reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum ConnectionStatus {
    /// Not reachable; never offered to a strategy. The status of a peer until its
    /// transport reports otherwise.
    #[default]
    Unavailable = 0,
    /// The transport is trying to reach it; not offered to a strategy yet.
    Connecting = 1,
    /// Ready for requests.
    Available = 2,
}

impl ConnectionStatus {
    /// `"unavailable"`, `"connecting"` or `"available"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Unavailable => "unavailable",
            ConnectionStatus::Connecting => "connecting",
            ConnectionStatus::Available => "available",
        }
    }

    pub(crate) fn from_u8(v: u8) -> ConnectionStatus {
        match v {
            2 => ConnectionStatus::Available,
            1 => ConnectionStatus::Connecting,
            _ => ConnectionStatus::Unavailable,
        }
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConnectionStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<ConnectionStatus> {
        match s {
            "unavailable" => Ok(ConnectionStatus::Unavailable),
            "connecting" => Ok(ConnectionStatus::Connecting),
            "available" => Ok(ConnectionStatus::Available),
            other => Err(Error::InvalidArgument(format!(
                "unknown connection status {other:?}; expected \"unavailable\", \"connecting\" or \"available\""
            ))),
        }
    }
}

/// Where a retained peer is in its list's lifecycle (the list's record of it, readable
/// without the list's lock, so that status reports made from inside `retain` cost no lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Retention {
    /// The list is calling (or about to call) the transport's `retain`.
    Retaining = 0,
    /// `retain` returned and the list acts on every status report.
    Retained = 1,
    /// The list let go of it (removed, stopped, or `retain` failed); reports are stale.
    Released = 2,
}

/// A peer's connection status plus how many requests to it are in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStatus {
    /// What the transport last reported.
    pub connection_status: ConnectionStatus,
    /// Requests chosen for this peer and not finished yet.
    pub pending: usize,
}

/// A peer to add to a list: its id and weight (default 1; strategies that do not weigh
/// ignore it), and its place in the fleet: a `zone` (locality) and a `priority` (0, the
/// default, is the highest). See [`crate::list`]'s routing for what zone and priority do.
///
/// ```
/// use peerlb::PeerSpec;
/// let a: PeerSpec = "a:1".into();
/// assert_eq!((a.weight, a.priority, a.zone.as_deref()), (1, 0, None));
/// let b = PeerSpec::weighted("b:1", 3).with_zone("us-east-1a").with_priority(1);
/// assert_eq!(b.id, "b:1");
/// assert_eq!(b.zone.as_deref(), Some("us-east-1a"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The peer id (validated when the list applies it).
    pub id: String,
    /// Relative weight, at least 1.
    pub weight: u32,
    /// The peer's zone (locality), if it has one: 1..=[`MAX_ZONE_LEN`] bytes of UTF-8
    /// without NUL (an empty string is the same as none).
    pub zone: Option<String>,
    /// The peer's priority level: 0 (the default) is the highest; traffic spills to higher
    /// numbers as lower ones lose health.
    pub priority: u32,
}

/// Longest accepted zone name, in bytes.
pub const MAX_ZONE_LEN: usize = 1024;

impl PeerSpec {
    /// A peer of weight 1.
    pub fn new(id: impl Into<String>) -> PeerSpec {
        PeerSpec {
            id: id.into(),
            weight: 1,
            zone: None,
            priority: 0,
        }
    }

    /// A peer with the given weight.
    pub fn weighted(id: impl Into<String>, weight: u32) -> PeerSpec {
        PeerSpec {
            weight,
            ..PeerSpec::new(id)
        }
    }

    /// The same peer in zone `zone` (an empty string means no zone).
    pub fn with_zone(mut self, zone: impl Into<String>) -> PeerSpec {
        let zone = zone.into();
        self.zone = (!zone.is_empty()).then_some(zone);
        self
    }

    /// The same peer at priority level `priority` (0 is the highest).
    pub fn with_priority(mut self, priority: u32) -> PeerSpec {
        self.priority = priority;
        self
    }
}

impl From<&str> for PeerSpec {
    fn from(id: &str) -> PeerSpec {
        PeerSpec::new(id)
    }
}

impl From<String> for PeerSpec {
    fn from(id: String) -> PeerSpec {
        PeerSpec::new(id)
    }
}

impl From<&String> for PeerSpec {
    fn from(id: &String) -> PeerSpec {
        PeerSpec::new(id.clone())
    }
}

/// One count in the low half of [`Peer`]'s packed counter: a reference.
const REF: u64 = 1;
/// One count in the high half: a request in flight (which is also a reference).
const PENDING: u64 = 1 << 32;
const REFS_MASK: u64 = PENDING - 1;
/// Beyond this many references or requests the process aborts, as `Arc` does on overflow.
const LIMIT: u64 = 1 << 31;

/// A retained peer as the list and its strategy see it.
///
/// The list creates one each time it retains a peer (so a peer removed and added again is
/// a new `Peer` with its own pending count). Strategies hold [`PeerRef`]s to it and may read
/// its id, weight, status and pending count; only the list changes them.
///
/// Its reference count and its pending count share one 64-bit atomic, so starting or
/// finishing a request is a single atomic operation on it (plus a relaxed increment of the
/// peer's `chosen` counter when a request starts). Those two counters are the only fields
/// the hot path writes, and they come first: in the allocator's 80-byte blocks they stay
/// within one cache line, and two peers' counters never share one. (A peer is not aligned
/// to a cache line: that tripled its memory, 272 bytes against 80.)
pub struct Peer {
    /// High 32 bits: requests in flight. Low 32 bits: references (in-flight requests
    /// included). The peer is freed when the references reach zero. (The shim's atomic, so
    /// that loom can check the protocol; the other counters are plain statistics.)
    counts: crate::sync::AtomicU64,
    /// Requests started to it since it was retained.
    chosen: AtomicU64,
    id: PeerId,
    /// Free for the strategy's own bookkeeping (e.g. a heap index); `usize::MAX` = unset.
    strategy_slot: AtomicUsize,
    list: Weak<ListShared>,
    /// Requests to it that ended as `failure` since it was retained.
    failures: AtomicU64,
    weight: u32,
    /// Failures in a row that make the list consider ejecting it (0 = never).
    eject_after: u32,
    /// The current run of failures (reset by `ok`).
    streak: AtomicU32,
    status: AtomicU8,
    /// A [`Retention`].
    retention: AtomicU8,
    /// True when the strategy wants to hear about pending changes.
    notify_pending: bool,
    /// True when the strategy wants to hear how requests ended (outcome and latency).
    notify_outcome: bool,
    /// The list's locality (priority level and zone) the peer belongs to; set before the
    /// peer is shared, read by routing (see `list::routing`).
    locality: AtomicU32,
    /// Its metric series, when the list keeps metrics (outcome counters the peer does not
    /// keep itself, latencies); the series also sums this peer's counters when it is freed.
    series: Option<Arc<PeerSeries>>,
    /// The list's count of requests in flight, when the list has a `max_pending` breaker.
    admission: Option<Arc<Admission>>,
    /// Lets loom check that the free comes after every other use (zero-sized otherwise).
    canary: FreeCanary,
}

impl Peer {
    pub(crate) fn new_ref(
        id: PeerId,
        weight: u32,
        list: Weak<ListShared>,
        notify_pending: bool,
        notify_outcome: bool,
        eject_after: u32,
    ) -> PeerRef {
        Peer::new_ref_with(
            id,
            weight,
            list,
            notify_pending,
            notify_outcome,
            eject_after,
            None,
            None,
        )
    }

    /// [`Peer::new_ref`] with the list's metric series and admission counter.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_ref_with(
        id: PeerId,
        weight: u32,
        list: Weak<ListShared>,
        notify_pending: bool,
        notify_outcome: bool,
        eject_after: u32,
        series: Option<Arc<PeerSeries>>,
        admission: Option<Arc<Admission>>,
    ) -> PeerRef {
        let peer = PeerRef::new(Peer {
            counts: crate::sync::AtomicU64::new(REF),
            id,
            weight,
            status: AtomicU8::new(ConnectionStatus::Unavailable as u8),
            retention: AtomicU8::new(Retention::Retaining as u8),
            strategy_slot: AtomicUsize::new(usize::MAX),
            list,
            notify_pending,
            notify_outcome,
            eject_after,
            streak: AtomicU32::new(0),
            chosen: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            series,
            admission,
            canary: FreeCanary::default(),
            locality: AtomicU32::new(0),
        });
        if let Some(series) = &peer.series {
            series.attach(&peer);
        }
        peer
    }

    /// A peer outside any list, for strategy unit tests and custom strategies' tests.
    pub fn detached(id: PeerId, weight: u32) -> PeerRef {
        Peer::new_ref(id, weight, Weak::new(), false, false, 0)
    }

    /// Requests started to it since it was retained.
    pub fn chosen(&self) -> u64 {
        self.chosen.load(Ordering::Relaxed)
    }

    /// Requests to it that ended as `failure` since it was retained.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Its current run of `failure` outcomes.
    pub fn consecutive_failures(&self) -> u32 {
        self.streak.load(Ordering::Relaxed)
    }

    pub(crate) fn clear_streak(&self) {
        self.streak.store(0, Ordering::Relaxed);
    }

    /// Counts a request's outcome; true when this failure completes a run long enough for
    /// the list to consider ejecting the peer.
    #[inline]
    pub(crate) fn record_outcome(&self, outcome: crate::request::Outcome) -> bool {
        use crate::request::Outcome;
        match outcome {
            Outcome::Ok => {
                if self.streak.load(Ordering::Relaxed) != 0 {
                    self.streak.store(0, Ordering::Relaxed);
                }
                false
            }
            Outcome::Failure => self.record_failure(),
            // Declined (the peer refused on purpose) and cancelled say nothing about health.
            Outcome::Declined | Outcome::Cancelled => {
                self.record_other(outcome);
                false
            }
        }
    }

    /// Counts a `declined` or `cancelled` outcome in the metrics (`ok` is derived at scrape
    /// time, `failure` is the peer's own counter).
    #[cold]
    fn record_other(&self, outcome: crate::request::Outcome) {
        if let Some(series) = &self.series {
            series.record_outcome(outcome);
        }
    }

    /// Its metric series, if the list keeps metrics.
    #[inline]
    pub(crate) fn series(&self) -> Option<&Arc<PeerSeries>> {
        self.series.as_ref()
    }
    #[cold]
    fn record_failure(&self) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let run = self
            .streak
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        self.eject_after != 0 && run >= self.eject_after
    }

    /// The peer's id.
    pub fn id(&self) -> &PeerId {
        &self.id
    }

    /// The weight it was added with (at least 1).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// What its transport last reported.
    pub fn connection_status(&self) -> ConnectionStatus {
        ConnectionStatus::from_u8(self.status.load(Ordering::SeqCst))
    }

    /// Requests in flight to this peer.
    #[inline]
    pub fn pending(&self) -> usize {
        (self.counts.load(Ordering::Relaxed) >> 32) as usize
    }

    /// Status and pending count together.
    pub fn status(&self) -> PeerStatus {
        PeerStatus {
            connection_status: self.connection_status(),
            pending: self.pending(),
        }
    }

    /// Strategy-private slot (e.g. a heap position); `usize::MAX` when unset.
    pub fn strategy_slot(&self) -> &AtomicUsize {
        &self.strategy_slot
    }

    /// The list's locality it belongs to (see `list::routing`).
    #[inline]
    pub(crate) fn locality(&self) -> u32 {
        self.locality.load(Ordering::Relaxed)
    }

    pub(crate) fn set_locality(&self, locality: u32) {
        self.locality.store(locality, Ordering::Relaxed);
    }

    /// Whether its list's strategy wants to hear how requests ended.
    #[inline]
    pub(crate) fn wants_outcome(&self) -> bool {
        self.notify_outcome
    }

    /// Its list (if it is still alive).
    pub(crate) fn list(&self) -> Option<std::sync::Arc<ListShared>> {
        self.list.upgrade()
    }

    /// Sequentially consistent with [`Peer::retention`]: a report stores the status and
    /// then reads the retention; the list sets the retention and then reads the status.
    /// So either the report sees `Retained` (and tells the list) or the list sees the
    /// reported status (or both).
    pub(crate) fn set_connection_status(&self, status: ConnectionStatus) {
        self.status.store(status as u8, Ordering::SeqCst);
    }

    pub(crate) fn retention(&self) -> Retention {
        match self.retention.load(Ordering::SeqCst) {
            0 => Retention::Retaining,
            1 => Retention::Retained,
            _ => Retention::Released,
        }
    }

    pub(crate) fn set_retention(&self, retention: Retention) {
        self.retention.store(retention as u8, Ordering::SeqCst);
    }

    #[inline]
    fn add_counts(&self, amount: u64) {
        let before = self.counts.fetch_add(amount, Ordering::Relaxed);
        if before & REFS_MASK >= LIMIT || before >> 32 >= LIMIT {
            std::process::abort();
        }
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .field("weight", &self.weight)
            .field("status", &self.connection_status())
            .field("pending", &self.pending())
            .finish()
    }
}

impl Drop for Peer {
    /// A freed peer's counters live on in its metric series.
    fn drop(&mut self) {
        if let Some(series) = &self.series {
            series.detach(self);
        }
    }
}

/// A shared reference to a [`Peer`], like `Arc<Peer>` (clone it freely; the peer lives
/// while any reference or request in flight does).
pub struct PeerRef {
    ptr: NonNull<Peer>,
    _owns: PhantomData<Peer>,
}

// SAFETY: PeerRef is a reference-counted pointer to a Peer, which is Send + Sync (all its
// mutable state is atomic); the count is updated atomically, as in Arc.
unsafe impl Send for PeerRef {}
// SAFETY: as above.
unsafe impl Sync for PeerRef {}

impl PeerRef {
    fn new(peer: Peer) -> PeerRef {
        PeerRef {
            ptr: NonNull::from(Box::leak(Box::new(peer))),
            _owns: PhantomData,
        }
    }

    /// Whether two references point at the same peer.
    #[inline]
    pub fn ptr_eq(a: &PeerRef, b: &PeerRef) -> bool {
        a.ptr == b.ptr
    }

    /// Starts a request to this peer: it counts as pending (and keeps the peer alive)
    /// until the returned [`InFlight`] is dropped. One atomic operation.
    #[inline]
    pub fn start_request(&self) -> InFlight {
        self.add_counts(PENDING + REF);
        self.chosen.fetch_add(1, Ordering::Relaxed);
        InFlight { ptr: self.ptr }
    }
}

/// Drops `amount` counts from `ptr`'s peer, freeing it when no reference is left.
///
/// # Safety
/// The caller owns `amount` counts of a live peer and does not use `ptr` afterwards.
#[inline]
unsafe fn release_counts(ptr: NonNull<Peer>, amount: u64) {
    let before = {
        // SAFETY: the caller's counts keep the peer alive until this subtraction (and the
        // reference ends with it).
        let peer = unsafe { ptr.as_ref() };
        peer.canary.touch();
        peer.counts.fetch_sub(amount, Ordering::Release)
    };
    if before & REFS_MASK == amount & REFS_MASK {
        // The last reference: synchronize with every other release, then free (as Arc).
        crate::sync::fence(Ordering::Acquire);
        // SAFETY: no count is left, so nothing else reaches the peer any more.
        unsafe { ptr.as_ref() }.canary.clobber();
        // SAFETY: the pointer came from Box::leak in PeerRef::new and no count is left.
        drop(unsafe { Box::from_raw(ptr.as_ptr()) });
    }
}

impl Clone for PeerRef {
    #[inline]
    fn clone(&self) -> PeerRef {
        self.add_counts(REF);
        PeerRef {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl Drop for PeerRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this PeerRef owns one reference and is never used again.
        unsafe { release_counts(self.ptr, REF) }
    }
}

impl std::ops::Deref for PeerRef {
    type Target = Peer;
    #[inline]
    fn deref(&self) -> &Peer {
        // SAFETY: our reference keeps the peer alive.
        unsafe { self.ptr.as_ref() }
    }
}

impl fmt::Debug for PeerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A request in flight to a peer, made by [`PeerRef::start_request`]: the peer's pending
/// count includes it until it is dropped (which ends the request).
pub struct InFlight {
    ptr: NonNull<Peer>,
}

// SAFETY: as for PeerRef.
unsafe impl Send for InFlight {}
// SAFETY: as for PeerRef.
unsafe impl Sync for InFlight {}

impl InFlight {
    /// The peer.
    #[inline]
    pub fn peer(&self) -> &Peer {
        // SAFETY: the in-flight count keeps the peer alive.
        unsafe { self.ptr.as_ref() }
    }

    /// A new reference to the peer.
    pub fn peer_ref(&self) -> PeerRef {
        self.peer().add_counts(REF);
        PeerRef {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }

    /// Takes back a request that was never handed out (a circuit breaker found its peer at
    /// its limit): pending and the `chosen` counter go back down, the list's admission
    /// count is left alone (the caller reserved it and keeps it for the next pick), and the
    /// strategy hears of the change if it asked to.
    #[cold]
    pub(crate) fn undo(self) {
        let peer = self.peer();
        peer.chosen.fetch_sub(1, Ordering::Relaxed);
        let notify = peer.notify_pending.then(|| peer.list.upgrade()).flatten();
        let keep = notify.as_ref().map(|_| self.peer_ref());
        let ptr = self.ptr;
        std::mem::forget(self);
        // SAFETY: this InFlight owned one pending count and one reference, and is gone.
        unsafe { release_counts(ptr, PENDING + REF) };
        if let (Some(list), Some(peer)) = (notify, keep) {
            list.pending_changed(&peer);
        }
    }

    /// Ends the request and keeps a reference to the peer: pending goes down (and the
    /// strategy hears of it, as on a drop) in one atomic operation, the request's hold on
    /// the peer becoming the returned reference (a drop plus `peer_ref` would take two).
    #[inline]
    pub(crate) fn end(self) -> PeerRef {
        if let Some(admission) = &self.peer().admission {
            admission.release();
        }
        let ptr = self.ptr;
        std::mem::forget(self);
        let peer = PeerRef {
            ptr,
            _owns: PhantomData,
        };
        // The reference the request held stays, owned by `peer`.
        peer.counts.fetch_sub(PENDING, Ordering::Release);
        if peer.notify_pending {
            if let Some(list) = peer.list.upgrade() {
                list.pending_changed(&peer);
            }
        }
        peer
    }

    /// An opaque token for foreign code; exactly one [`InFlight::from_raw`] must follow.
    #[inline]
    pub(crate) fn into_raw(self) -> *const () {
        let ptr = self.ptr.as_ptr() as *const ();
        std::mem::forget(self);
        ptr
    }

    /// # Safety
    /// `token` came from [`InFlight::into_raw`] and is used once.
    #[inline]
    pub(crate) unsafe fn from_raw(token: *const ()) -> InFlight {
        InFlight {
            // SAFETY: the caller guarantees a token from into_raw, which is never null.
            ptr: unsafe { NonNull::new_unchecked(token as *mut Peer) },
        }
    }
}

impl Drop for InFlight {
    /// Ends the request: pending goes down by one (never below zero: each `InFlight`
    /// ends once), and the strategy hears of it if it asked to.
    #[inline]
    fn drop(&mut self) {
        let peer = self.peer();
        if let Some(admission) = &peer.admission {
            admission.release();
        }
        if peer.notify_pending {
            if let Some(list) = peer.list.upgrade() {
                let keep = self.peer_ref();
                // SAFETY: this InFlight owns one pending count and one reference.
                unsafe { release_counts(self.ptr, PENDING + REF) };
                list.pending_changed(&keep);
                return;
            }
        }
        // SAFETY: as above.
        unsafe { release_counts(self.ptr, PENDING + REF) };
    }
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InFlight").field(&self.peer().id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_references_and_requests_in_one_word() {
        let peer = Peer::detached(PeerId::new("a").unwrap(), 1);
        let second = peer.clone();
        let r1 = peer.start_request();
        let r2 = second.start_request();
        assert_eq!(peer.pending(), 2);
        drop(second);
        drop(r1);
        assert_eq!(peer.pending(), 1);
        let again = r2.peer_ref();
        drop(peer);
        drop(again);
        // The request alone keeps the peer alive.
        assert_eq!(r2.peer().id().as_str(), "a");
        assert_eq!(r2.peer().pending(), 1);
        drop(r2);
    }

    #[test]
    fn a_raw_token_round_trips() {
        let peer = Peer::detached(PeerId::new("b").unwrap(), 2);
        let token = peer.start_request().into_raw();
        drop(peer);
        // SAFETY: the token came from into_raw just above and is used once.
        let back = unsafe { InFlight::from_raw(token) };
        assert_eq!(back.peer().weight(), 2);
        assert_eq!(back.peer().pending(), 1);
    }

    #[test]
    fn threads_share_peers_safely() {
        let peer = Peer::detached(PeerId::new("c").unwrap(), 1);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = peer.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let r = p.start_request();
                        let q = r.peer_ref();
                        drop(r);
                        drop(q);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peer.pending(), 0);
    }
}
