//! Published snapshots: how a strategy that chooses from an immutable structure (an array of
//! peers, a ring, a table) takes a batch of changes and publishes the result once.
//!
//! The list calls [`Strategy::update`](super::Strategy::update) under its lock, in the order
//! of its changes; a snapshot strategy only [`Publisher::stage`]s them there (O(changes)).
//! [`Strategy::batch_end`](super::Strategy::batch_end) then runs with no lock of the list held
//! and calls [`Publisher::publish_staged`], which builds the next structure from the current
//! one and the net changes, and publishes it with one atomic swap. So a batch of any size
//! costs one build, and a `choose` never builds anything: it reads the last published
//! structure (choosers compare one shared, rarely written generation counter and reload only
//! when it moved).
//!
//! # Invariants
//! * Staged changes are applied in the order they were staged, whichever thread's
//!   `batch_end` publishes them (a `batch_end` publishes every batch staged before it, its
//!   own included); a peer staged as added and then removed (or the reverse) in two batches
//!   nets out.
//! * A `choose` never drops the last reference to a replaced structure: the publisher keeps
//!   each replaced structure ("retired") until no chooser holds it any more, and frees it in
//!   a later publish. Dropping a structure of 100 000 peers takes milliseconds, which belongs
//!   to the writer, not to a `choose`.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use crate::peer::{Peer, PeerRef};
use crate::sync::{ArcCell, ArcGuard, AtomicU64, Mutex, MutexGuard, Ordering};

/// One published structure and its generation.
pub(crate) struct Published<T> {
    pub(crate) generation: u64,
    pub(crate) value: T,
}

impl<T> Deref for Published<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.value
    }
}

/// The net effect of the staged batches: peers that left, then peers that came, each in the
/// order it was staged.
#[derive(Default)]
pub(crate) struct Changes {
    pub(crate) removed: Vec<PeerRef>,
    pub(crate) added: Vec<PeerRef>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }

    /// The set of removed peers, for filtering a structure in one pass.
    pub(crate) fn removed_set(&self) -> std::collections::HashSet<*const Peer> {
        self.removed.iter().map(|p| &**p as *const Peer).collect()
    }
}

/// Batches staged since the last publish.
#[derive(Default)]
struct Staged {
    /// `(peer, true)` = added, `(peer, false)` = removed, in order.
    changes: Vec<(PeerRef, bool)>,
    batches: usize,
}

impl Staged {
    fn push(&mut self, added: &[PeerRef], removed: &[PeerRef]) {
        if added.is_empty() && removed.is_empty() {
            return;
        }
        self.changes
            .extend(removed.iter().map(|p| (p.clone(), false)));
        self.changes.extend(added.iter().map(|p| (p.clone(), true)));
        self.batches += 1;
    }

    /// The net changes; empties the stage.
    fn take(&mut self) -> Changes {
        let changes = std::mem::take(&mut self.changes);
        let batches = std::mem::replace(&mut self.batches, 0);
        let mut net = Changes::default();
        if batches <= 1 {
            // One batch: the list never stages a peer twice in one batch.
            for (peer, added) in changes {
                if added {
                    net.added.push(peer);
                } else {
                    net.removed.push(peer);
                }
            }
            return net;
        }
        // Several batches: a peer's changes alternate (added, removed, added, ...), so an
        // even number of them cancels out and an odd number is its first change.
        let mut count: HashMap<*const Peer, usize> = HashMap::with_capacity(changes.len());
        for (peer, _) in &changes {
            *count.entry(&**peer as *const Peer).or_default() += 1;
        }
        for (peer, added) in changes {
            let key = &*peer as *const Peer;
            match count.get_mut(&key) {
                Some(n) if *n % 2 == 1 => {
                    *n = 0; // only the first change counts
                    if added {
                        net.added.push(peer);
                    } else {
                        net.removed.push(peer);
                    }
                }
                _ => {}
            }
        }
        net
    }
}

struct Writer<T> {
    staged: Staged,
    /// Replaced structures some chooser may still hold (see the module docs).
    retired: Vec<Arc<Published<T>>>,
}

/// A structure published to choosers, with the changes staged for its next version.
pub(crate) struct Publisher<T> {
    current: ArcCell<Published<T>>,
    generation: AtomicU64,
    writer: Mutex<Writer<T>>,
}

impl<T> Publisher<T> {
    /// A publisher of `value` (generation 0).
    pub(crate) fn new(value: T) -> Publisher<T> {
        Publisher {
            current: ArcCell::from_pointee(Published {
                generation: 0,
                value,
            }),
            generation: AtomicU64::new(0),
            writer: Mutex::new(Writer {
                staged: Staged::default(),
                retired: Vec::new(),
            }),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer<T>> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The generation choosers compare their cached structure with.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current structure (a reference-counted handle, for caching in a stripe).
    #[inline]
    pub(crate) fn load(&self) -> Arc<Published<T>> {
        self.current.load_full()
    }

    /// The current structure for one short read (no reference count taken).
    #[inline]
    pub(crate) fn peek(&self) -> ArcGuard<Published<T>> {
        self.current.load()
    }

    /// Records one batch of changes (cheap: the list calls this under its lock).
    pub(crate) fn stage(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.writer().staged.push(added, removed);
    }

    /// Publishes `build(current, net changes)` if anything was staged; returns whether it
    /// did.
    pub(crate) fn publish_staged(&self, build: impl FnOnce(&T, Changes) -> T) -> bool {
        let mut writer = self.writer();
        let changes = writer.staged.take();
        if changes.is_empty() {
            return false;
        }
        let current = self.current.load_full();
        let next = build(&current.value, changes);
        self.store(&mut writer, current, next);
        true
    }

    /// Publishes `build(current)` when it returns a new structure (a change that is not a
    /// membership change, e.g. a slow-start step). `wait`: take the writer lock even when
    /// another thread holds it (else give up at once, for callers on the choose path).
    pub(crate) fn republish(&self, wait: bool, build: impl FnOnce(&T) -> Option<T>) {
        let mut writer = match self.writer.try_lock() {
            Ok(w) => w,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if wait => self.writer(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        let current = self.current.load_full();
        if let Some(next) = build(&current.value) {
            self.store(&mut writer, current, next);
        }
    }

    fn store(&self, writer: &mut Writer<T>, current: Arc<Published<T>>, next: T) {
        let generation = current.generation + 1;
        self.current.store(Arc::new(Published {
            generation,
            value: next,
        }));
        self.generation.store(generation, Ordering::Release);
        // Free what no chooser holds any more (this thread's handle of `current` aside).
        writer.retired.retain(|r| Arc::strong_count(r) > 1);
        writer.retired.push(current);
    }
}

/// Marks a peer that is not in an array strategy's array (its strategy slot's value).
pub(crate) const UNSET: usize = usize::MAX;

/// An element of an unordered peer array (the peer itself, or an entry that carries it).
pub(crate) trait Member: Clone {
    fn peer(&self) -> &PeerRef;
}

impl Member for PeerRef {
    #[inline]
    fn peer(&self) -> &PeerRef {
        self
    }
}

/// Where `peer` sits in `members`, found through its strategy slot (which array strategies
/// keep as the peer's index in their newest array).
#[inline]
pub(crate) fn index_of<M: Member>(members: &[M], peer: &PeerRef) -> Option<usize> {
    let i = peer.strategy_slot().load(Ordering::Relaxed);
    (i < members.len() && PeerRef::ptr_eq(members[i].peer(), peer)).then_some(i)
}

/// The next version of an unordered array, as yarpc's random lists change theirs: a removed
/// peer's place is taken by the last one, and additions are appended. Keeps each peer's
/// strategy slot equal to its index (O(changes), besides copying the array once).
pub(crate) fn apply_unordered<M: Member>(
    current: &[M],
    changes: Changes,
    make: impl Fn(&PeerRef) -> M,
) -> Vec<M> {
    let mut members = Vec::with_capacity(current.len() + changes.added.len());
    members.extend_from_slice(current);
    for peer in &changes.removed {
        let Some(i) = index_of(&members, peer) else {
            continue;
        };
        members.swap_remove(i);
        peer.strategy_slot().store(UNSET, Ordering::Relaxed);
        if let Some(moved) = members.get(i) {
            moved.peer().strategy_slot().store(i, Ordering::Relaxed);
        }
    }
    for peer in &changes.added {
        peer.strategy_slot().store(members.len(), Ordering::Relaxed);
        members.push(make(peer));
    }
    members
}

/// Counts publishes, for tests that check when structures are rebuilt.
#[derive(Default)]
pub(crate) struct BuildCounter(AtomicUsize);

impl BuildCounter {
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::test_support::peers;

    fn ids(v: &[PeerRef]) -> Vec<String> {
        v.iter().map(|p| p.id().to_string()).collect()
    }

    #[test]
    fn net_changes_cancel_across_batches() {
        let ps = peers(&["a", "b", "c"]);
        let mut staged = Staged::default();
        staged.push(&ps[..1], &[]);
        staged.push(&[], &ps[..1]);
        staged.push(&ps[1..2], &[]);
        staged.push(&[], &ps[2..3]);
        let net = staged.take();
        assert_eq!(ids(&net.added), ["b"]);
        assert_eq!(ids(&net.removed), ["c"]);
        assert!(staged.take().is_empty());
    }

    #[test]
    fn unordered_arrays_swap_remove_and_append() {
        let ps = peers(&["a", "b", "c", "d"]);
        let all = Changes {
            removed: Vec::new(),
            added: ps.clone(),
        };
        let v = apply_unordered::<PeerRef>(&[], all, PeerRef::clone);
        assert_eq!(ids(&v), ["a", "b", "c", "d"]);
        let some = Changes {
            removed: vec![ps[0].clone()],
            added: Vec::new(),
        };
        let v = apply_unordered(&v, some, PeerRef::clone);
        assert_eq!(ids(&v), ["d", "b", "c"]);
        assert_eq!(index_of(&v, &ps[3]), Some(0));
        assert_eq!(index_of(&v, &ps[0]), None);
    }

    #[test]
    fn replaced_structures_are_freed_by_the_writer() {
        let publisher = Publisher::new(vec![1u8]);
        let held = publisher.load(); // a chooser's cached copy of generation 0
        let retired = |p: &Publisher<Vec<u8>>| -> Vec<u64> {
            p.writer().retired.iter().map(|r| r.generation).collect()
        };
        publisher.republish(true, |_| Some(vec![2]));
        publisher.republish(true, |_| Some(vec![3]));
        assert_eq!(retired(&publisher), [0, 1]);
        publisher.republish(true, |_| Some(vec![4]));
        assert_eq!(
            retired(&publisher),
            [0, 2],
            "1 was held by no chooser: freed"
        );
        drop(held);
        publisher.republish(true, |_| Some(vec![5]));
        assert_eq!(
            retired(&publisher),
            [3],
            "0 was freed once its chooser let go"
        );
        assert_eq!(publisher.peek().value, [5]);
    }
}
