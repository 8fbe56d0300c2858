//! yarpc's list queries: whether one peer is available or uninitialized, how many peers
//! are in each state, and which peers are retained. Each reads the state under the lock
//! (the counts come from the class tally, O(1)).

use super::membership::Phase;
use super::PeerList;
use crate::peer::PeerId;

impl PeerList {
    /// Whether `id` would be chosen now: retained, reported available, enabled, and not
    /// ejected (or ejected while the panic floor is active, when ejections are ignored).
    /// False for an id not in the list.
    ///
    /// ```
    /// use peerlb::{ListOptions, PeerList};
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// list.update(["a:1", "b:1"], None::<&str>).unwrap();
    /// assert!(!list.available("a:1"));
    /// assert!(list.uninitialized("a:1"));
    /// list.start().unwrap();
    /// list.disable("b:1").unwrap();
    /// assert!(list.available("a:1") && !list.available("b:1") && !list.uninitialized("a:1"));
    /// assert_eq!((list.num_available(), list.num_unavailable(), list.num_uninitialized()), (1, 1, 0));
    /// assert_eq!(list.peers().len(), 2);
    /// ```
    pub fn available(&self, id: &str) -> bool {
        let state = self.shared.lock();
        state.peers.get(id).is_some_and(|slot| slot.offered)
    }

    /// Whether `id` is in the list but not retained: added while the list was not
    /// running (yarpc's uninitialized peers). False for an id not in the list.
    pub fn uninitialized(&self, id: &str) -> bool {
        let state = self.shared.lock();
        state
            .peers
            .get(id)
            .is_some_and(|slot| slot.phase == Phase::Uninitialized)
    }

    /// How many peers would be chosen now (see [`PeerList::available`]).
    pub fn num_available(&self) -> usize {
        self.shared.lock().tally.offered()
    }

    /// How many retained peers would not be chosen now: unavailable, connecting, being
    /// retained, disabled, or ejected. `num_available + num_unavailable +
    /// num_uninitialized` is the number of peers.
    pub fn num_unavailable(&self) -> usize {
        let state = self.shared.lock();
        state.peers.len() - state.tally.offered() - state.tally.count_idle()
    }

    /// How many peers are in the list but not retained (the list is not running).
    pub fn num_uninitialized(&self) -> usize {
        self.shared.lock().tally.count_idle()
    }

    /// The retained peers (available or not), in the order they were added; empty while
    /// the list is not running (yarpc's `Peers()`).
    pub fn peers(&self) -> Vec<PeerId> {
        let state = self.shared.lock();
        let mut retained: Vec<(u64, &PeerId)> = state
            .peers
            .iter()
            .filter(|(_, slot)| slot.phase != Phase::Uninitialized)
            .map(|(id, slot)| (slot.seq, id))
            .collect();
        retained.sort_unstable_by_key(|(seq, _)| *seq);
        retained.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// The capacity hint the list was made with ([`ListOptions::capacity`](super::ListOptions::capacity);
    /// yarpc's default, 10, when not given).
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}
