//! Peers: validated ids, connection status, and the list's record of a retained peer.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use crate::error::{Error, Result};
use crate::list::ListShared;
use crate::transport::Subscriber;

/// Longest accepted peer id, in bytes.
pub const MAX_PEER_ID_LEN: usize = 1024;

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
    pub fn as_str(&self) -> &str {
        &self.0
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

/// A peer's connection status plus how many requests to it are in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStatus {
    /// What the transport last reported.
    pub connection_status: ConnectionStatus,
    /// Requests chosen for this peer and not finished yet.
    pub pending: usize,
}

/// A peer to add to a list: its id and weight (default 1; strategies that do not weigh
/// ignore it).
///
/// ```
/// use peerlb::PeerSpec;
/// let a: PeerSpec = "a:1".into();
/// assert_eq!(a.weight, 1);
/// let b = PeerSpec::weighted("b:1", 3);
/// assert_eq!(b.id, "b:1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The peer id (validated when the list applies it).
    pub id: String,
    /// Relative weight, at least 1.
    pub weight: u32,
}

impl PeerSpec {
    /// A peer of weight 1.
    pub fn new(id: impl Into<String>) -> PeerSpec {
        PeerSpec {
            id: id.into(),
            weight: 1,
        }
    }

    /// A peer with the given weight.
    pub fn weighted(id: impl Into<String>, weight: u32) -> PeerSpec {
        PeerSpec {
            id: id.into(),
            weight,
        }
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

/// A retained peer as the list and its strategy see it.
///
/// The list creates one each time it retains a peer (so a peer removed and added again is
/// a new `Peer` with its own pending count). Strategies receive `Arc<Peer>` and may read
/// its id, weight, status and pending count; only the list changes them.
///
/// Aligned to a cache line so that two peers' counters never share one.
#[repr(align(64))]
pub struct Peer {
    id: PeerId,
    weight: u32,
    status: AtomicU8,
    pending: AtomicUsize,
    /// Free for the strategy's own bookkeeping (e.g. a heap index); `usize::MAX` = unset.
    strategy_slot: AtomicUsize,
    subscriber: Subscriber,
    list: Weak<ListShared>,
    /// True when the strategy wants to hear about pending changes.
    notify_pending: bool,
}

impl Peer {
    pub(crate) fn new(
        id: PeerId,
        weight: u32,
        list: Weak<ListShared>,
        notify_pending: bool,
    ) -> Arc<Peer> {
        Arc::new_cyclic(|me: &Weak<Peer>| Peer {
            id,
            weight,
            status: AtomicU8::new(ConnectionStatus::Unavailable as u8),
            pending: AtomicUsize::new(0),
            strategy_slot: AtomicUsize::new(usize::MAX),
            subscriber: Subscriber::new(list.clone(), me.clone()),
            list,
            notify_pending,
        })
    }

    /// A peer outside any list, for strategy unit tests and custom strategies' tests.
    pub fn detached(id: PeerId, weight: u32) -> Arc<Peer> {
        Peer::new(id, weight, Weak::new(), false)
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
        ConnectionStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    /// Requests in flight to this peer.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
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

    pub(crate) fn subscriber(&self) -> &Subscriber {
        &self.subscriber
    }

    pub(crate) fn set_connection_status(&self, status: ConnectionStatus) {
        self.status.store(status as u8, Ordering::Release);
    }

    pub(crate) fn begin_request(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends one request: pending goes down by one and never below zero.
    pub(crate) fn end_request(self: &Arc<Self>) {
        let before = self.pending.fetch_sub(1, Ordering::Relaxed);
        if before == 0 {
            // Cannot happen by construction (each Choice ends once); keep the invariant anyway.
            self.pending.fetch_add(1, Ordering::Relaxed);
        }
        if self.notify_pending {
            if let Some(list) = self.list.upgrade() {
                list.pending_changed(self);
            }
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
