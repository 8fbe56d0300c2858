//! An atomically swapped array of available peers, shared by the array-based strategies
//! (`random`, `two-random-choices`): readers load it without a lock; writers (serialized by
//! the list) copy, change and swap it.

use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};

use crate::peer::Peer;

/// Available peers in yarpc's order: appended on add, swap-removed on remove.
pub(crate) struct PeerSnapshot {
    peers: ArcSwap<Vec<Arc<Peer>>>,
    write: Mutex<()>,
}

impl PeerSnapshot {
    pub(crate) fn new() -> PeerSnapshot {
        PeerSnapshot {
            peers: ArcSwap::from_pointee(Vec::new()),
            write: Mutex::new(()),
        }
    }

    /// The current peers (a cheap, lock-free guard).
    #[inline]
    pub(crate) fn load(&self) -> Guard<Arc<Vec<Arc<Peer>>>> {
        self.peers.load()
    }

    pub(crate) fn add(&self, peer: &Arc<Peer>) {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Vec::clone(&self.peers.load());
        next.push(peer.clone());
        self.peers.store(Arc::new(next));
    }

    /// Removes `peer`, moving the last peer into its place (as yarpc's lists do).
    pub(crate) fn remove(&self, peer: &Arc<Peer>) {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.peers.load();
        let Some(i) = current.iter().position(|p| Arc::ptr_eq(p, peer)) else {
            return;
        };
        let mut next = Vec::clone(&current);
        next.swap_remove(i);
        self.peers.store(Arc::new(next));
    }
}
