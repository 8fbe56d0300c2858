//! Transports own connections to peers and report their status to the list.
//!
//! The list calls [`Transport::retain`] when it starts using a peer and
//! [`Transport::release`] when it stops. The transport reports status changes through the
//! [`Subscriber`] it was handed, from any thread, at any time — including from inside
//! `retain` itself, which is how a transport gives a peer its first status. The list never
//! holds a lock while it calls a transport, so a transport may call back into the list.
//!
//! The shape fits callback-based transports (C function pointers, Python and JS objects):
//! two calls that succeed or fail, and a handle to report through.

use std::fmt;

use crate::peer::{ConnectionStatus, PeerId, PeerRef, Retention};

/// Something that can connect to peers: retain/release them and report their status.
///
/// A minimal transport that marks every peer available at once:
///
/// ```
/// use peerlb::{ConnectionStatus, PeerId, Subscriber, Transport};
///
/// struct Instant;
/// impl Transport for Instant {
///     fn retain(&self, _id: &PeerId, sub: &Subscriber) -> Result<(), String> {
///         sub.set_status(ConnectionStatus::Available);
///         Ok(())
///     }
///     fn release(&self, _id: &PeerId, _sub: &Subscriber) -> Result<(), String> {
///         Ok(())
///     }
/// }
/// ```
pub trait Transport: Send + Sync + 'static {
    /// Start tracking `id` for a list. Report the peer's status through `subscriber`
    /// (now or later, from any thread). Until it does, the peer is `unavailable`.
    /// An `Err` means the peer is not added; the message reaches the caller as
    /// [`crate::Error::TransportFailed`]. A panic is caught and treated the same way.
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String>;

    /// Stop tracking `id` for the subscriber given to `retain`. After this returns the
    /// subscriber's reports are ignored.
    fn release(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String>;

    /// A short name for introspection, e.g. `"always-available"`.
    fn name(&self) -> &str {
        "custom"
    }
}

/// The default transport: every retained peer is available at once and stays so.
#[derive(Debug, Default, Clone, Copy)]
pub struct AlwaysAvailable;

impl Transport for AlwaysAvailable {
    fn retain(&self, _id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        subscriber.set_status(ConnectionStatus::Available);
        Ok(())
    }

    fn release(&self, _id: &PeerId, _subscriber: &Subscriber) -> Result<(), String> {
        Ok(())
    }

    fn name(&self) -> &str {
        "always-available"
    }
}

/// The handle through which a transport reports one peer's status to one list.
///
/// Cheap to clone, `Send + Sync`; [`Subscriber::set_status`] may be called from any
/// thread at any time. Reports for a peer that the list has since released (or for a list
/// that is gone) are ignored. Two subscribers are equal when they are handles of the same
/// retained peer (each retain gets a new one).
#[derive(Clone)]
pub struct Subscriber(PeerRef);

impl Subscriber {
    pub(crate) fn new(peer: PeerRef) -> Subscriber {
        Subscriber(peer)
    }

    /// The peer this subscriber reports on.
    pub(crate) fn peer(&self) -> &PeerRef {
        &self.0
    }

    /// Report the peer's new connection status. Returns `true` if the list took it,
    /// `false` if the report was stale (peer released or list gone).
    ///
    /// A report made while the list is still retaining the peer (from inside
    /// [`Transport::retain`], the usual way to give a peer its first status) only records
    /// the status; the list acts on it when `retain` returns, in one step for the whole
    /// batch of peers it retained.
    pub fn set_status(&self, status: ConnectionStatus) -> bool {
        let peer = &self.0;
        if peer.retention() == Retention::Released {
            return false;
        }
        peer.set_connection_status(status);
        if peer.retention() == Retention::Retaining {
            return true;
        }
        match peer.list() {
            Some(list) => list.status_reported(peer),
            None => false,
        }
    }

    /// The id of the peer this subscriber reports on.
    pub fn peer_id(&self) -> PeerId {
        self.0.id().clone()
    }

    /// A stable address identifying this handle (for foreign transports that key on it).
    pub fn as_ptr(&self) -> *const () {
        &*self.0 as *const crate::Peer as *const ()
    }
}

impl PartialEq for Subscriber {
    fn eq(&self, other: &Subscriber) -> bool {
        PeerRef::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Subscriber {}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("peer", &self.peer_id())
            .finish()
    }
}
