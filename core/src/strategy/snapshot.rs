//! The published set of available peers for the array-based strategies (`round-robin`,
//! `random`, `two-random-choices`), and each thread's cached view of it.
//!
//! Writers (serialized by [`PeerSnapshot::write`]) publish a new immutable array and bump
//! a generation counter. Readers keep a [`View`] in their stripe and only reload (through
//! arc-swap) when the generation moved, so the hot path reads one shared, rarely written
//! counter and touches no other shared cache line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::peer::PeerRef;

/// One published array of available peers.
pub(crate) struct Published {
    pub(crate) peers: Vec<PeerRef>,
    pub(crate) generation: u64,
    /// Where a thread that has never chosen starts (round-robin's ring head).
    pub(crate) head: usize,
}

/// The authoritative, atomically swapped array.
pub(crate) struct PeerSnapshot {
    current: ArcSwap<Published>,
    generation: AtomicU64,
    write: Mutex<()>,
}

impl PeerSnapshot {
    pub(crate) fn new() -> PeerSnapshot {
        PeerSnapshot {
            current: ArcSwap::from_pointee(Published {
                peers: Vec::new(),
                generation: 0,
                head: 0,
            }),
            generation: AtomicU64::new(0),
            write: Mutex::new(()),
        }
    }

    /// The generation readers compare their view with.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current array (a reference-counted handle).
    pub(crate) fn load(&self) -> Arc<Published> {
        self.current.load_full()
    }

    /// Serializes writers; hold it across `load` and `publish`.
    pub(crate) fn write(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a new array (call with [`PeerSnapshot::write`] held).
    pub(crate) fn publish(&self, peers: Vec<PeerRef>, head: usize) -> Arc<Published> {
        let generation = self.current.load().generation + 1;
        let published = Arc::new(Published {
            peers,
            generation,
            head,
        });
        self.current.store(published.clone());
        self.generation.store(generation, Ordering::Release);
        published
    }

    /// Appends `peer` (yarpc's order for random lists).
    pub(crate) fn push(&self, peer: &PeerRef) {
        let _w = self.write();
        let mut peers = self.load().peers.clone();
        peers.push(peer.clone());
        self.publish(peers, 0);
    }

    /// Removes `peer`, moving the last peer into its place (as yarpc's lists do).
    pub(crate) fn swap_remove(&self, peer: &PeerRef) {
        let _w = self.write();
        let current = self.load();
        let Some(i) = current.peers.iter().position(|p| PeerRef::ptr_eq(p, peer)) else {
            return;
        };
        let mut peers = current.peers.clone();
        peers.swap_remove(i);
        self.publish(peers, 0);
    }
}

/// A thread's cached copy of the published array.
pub(crate) struct View {
    pub(crate) current: Arc<Published>,
}

impl View {
    pub(crate) fn new(source: &PeerSnapshot) -> View {
        View {
            current: source.load(),
        }
    }

    /// Whether the view is behind `generation`.
    #[inline]
    pub(crate) fn is_stale(&self, generation: u64) -> bool {
        self.current.generation != generation
    }

    /// The cached peers.
    #[inline]
    pub(crate) fn peers(&self) -> &[PeerRef] {
        &self.current.peers
    }
}
