//! Subsetting as a list option ([`ListOptions::subset`] and [`ListOptions::subset_client`]):
//! the list keeps the whole *offered* membership and retains only its deterministic subset
//! (see [`crate::subset`]).
//!
//! The rules are in the [list's docs](super#subsetting).

use std::collections::HashSet;

use indexmap::IndexMap;

use foldhash::fast::RandomState;

use super::commit::Commit;
use super::membership::NewPeer;
use super::ListOptions;
use crate::error::{Error, Result};
use crate::introspect::SubsetIntrospection;
use crate::peer::PeerId;

impl ListOptions {
    /// Deterministic subsetting: the list retains only `size` of the peers it is given
    /// (Google SRE's deterministic subsetting, see [`crate::subset`]), the same ones
    /// [`deterministic_subset`](crate::subset::deterministic_subset) answers for the
    /// offered peers, [`ListOptions::subset_client`] and `size`. 0 (the default) is off.
    /// A size of at least the number of offered peers retains them all.
    ///
    /// `subset` of 1 or more needs a [`ListOptions::subset_client`], and a
    /// `subset_client` needs `subset` (0 included): otherwise making the list is
    /// `invalid-argument`. Updates name the whole offered membership; see
    /// [`crate::list`]'s section on subsetting.
    ///
    /// ```
    /// use peerlb::{ListOptions, PeerList};
    /// let ids: Vec<String> = (0..12).map(|i| format!("10.0.0.{i}:80")).collect();
    /// let list = PeerList::new(ListOptions::default().subset(4).subset_client(7)).unwrap();
    /// list.update(&ids, None::<&str>).unwrap();
    /// let mut retained: Vec<String> = list.introspect().peers.into_iter().map(|p| p.id).collect();
    /// retained.sort();
    /// let mut expected = peerlb::subset::deterministic_subset(&ids, 7, 4);
    /// expected.sort();
    /// assert_eq!(retained, expected);
    /// assert_eq!(list.introspect().subset.unwrap().offered, 12);
    /// assert!(PeerList::new(ListOptions::default().subset(4)).is_err()); // no client
    /// ```
    pub fn subset(mut self, size: usize) -> Self {
        self.subset = Some(size);
        self
    }

    /// This client's id for [`ListOptions::subset`]: clients with different ids get
    /// different (and, over a round of clients, evenly spread) subsets. Give every client
    /// of a service its own id, counting from 0 (for example its task or replica number).
    ///
    /// ```
    /// use peerlb::{ListOptions, PeerList};
    /// let list = PeerList::new(ListOptions::default().subset(2).subset_client(0)).unwrap();
    /// list.update(["a:1", "b:1", "c:1", "d:1"], None::<&str>).unwrap();
    /// assert_eq!(list.len(), 2);
    /// assert!(PeerList::new(ListOptions::default().subset_client(3)).is_err()); // no size
    /// ```
    pub fn subset_client(mut self, client: u64) -> Self {
        self.subset_client = Some(client);
        self
    }
}

/// The offered membership of a subsetting list, and how to subset it.
pub(super) struct Subsetting {
    size: usize,
    client: u64,
    /// Every offered peer with its metadata (weight, zone, priority), by id.
    offered: IndexMap<PeerId, NewPeer, RandomState>,
}

impl Subsetting {
    /// The subsetting the options ask for: `None` when off; `invalid-argument` for a size
    /// without a client or a client without a size.
    pub(super) fn new(size: Option<usize>, client: Option<u64>) -> Result<Option<Subsetting>> {
        match (size, client) {
            (None, None) | (Some(0), _) => Ok(None),
            (Some(size), Some(client)) => Ok(Some(Subsetting {
                size,
                client,
                offered: IndexMap::default(),
            })),
            (Some(size), None) => Err(Error::InvalidArgument(format!(
                "subset {size} needs subset_client (this client's id)"
            ))),
            (None, Some(client)) => Err(Error::InvalidArgument(format!(
                "subset_client {client} is given without subset (the subset's size)"
            ))),
        }
    }

    /// What introspection shows.
    pub(super) fn introspect(&self) -> SubsetIntrospection {
        SubsetIntrospection {
            size: self.size,
            client: self.client,
            offered: self.offered.len(),
        }
    }
}

/// Changes the records must take to hold the subset: removals (with the events' detail)
/// and additions.
pub(super) type SubsetChange = (Vec<(PeerId, &'static str)>, Vec<NewPeer>);

impl Commit<'_> {
    /// Whether the list subsets.
    pub(super) fn subsets(&self) -> bool {
        self.state.subset.is_some()
    }

    /// Applies an update to the offered membership (removals, then additions), pushing its
    /// errors in the order an update reports them (`invalid` between the removals' and the
    /// additions'), and answers what the records must change to hold the new subset.
    pub(super) fn offer(
        &mut self,
        removals: Vec<String>,
        additions: Vec<NewPeer>,
        invalid: Vec<Error>,
        errors: &mut Vec<Error>,
    ) -> SubsetChange {
        let subset = self.state.subset.as_mut().expect("a subsetting list");
        let mut changed = false;
        for raw in removals {
            match PeerId::new(&raw) {
                Ok(id) if subset.offered.swap_remove(&id).is_some() => changed = true,
                Ok(id) => errors.push(Error::PeerNotInList(id.to_string())),
                Err(e) => errors.push(e),
            }
        }
        errors.extend(invalid);
        subset.offered.reserve(additions.len());
        for peer in additions {
            if let Some((id, _)) = subset.offered.get_key_value(&peer.id) {
                errors.push(Error::PeerAlreadyInList(id.to_string()));
            } else {
                subset.offered.insert(peer.id.clone(), peer);
                changed = true;
            }
        }
        if changed {
            self.subset_change()
        } else {
            Default::default()
        }
    }

    /// Takes `id` out of the offered membership (admin `delete`); `None` when it was not
    /// offered, else the change of the records.
    pub(super) fn withdraw_offer(&mut self, id: &PeerId) -> Option<SubsetChange> {
        let subset = self.state.subset.as_mut().expect("a subsetting list");
        subset.offered.swap_remove(id)?;
        Some(self.subset_change())
    }

    /// The subset of the offered membership now, against the records: which records leave
    /// (in record order) and which peers come in (in the round's order). O(offered).
    fn subset_change(&mut self) -> SubsetChange {
        let state = &mut *self.state;
        let subset = state.subset.as_ref().expect("a subsetting list");
        let ids: Vec<&str> = subset.offered.keys().map(PeerId::as_str).collect();
        let chosen = crate::subset::select(ids, subset.client, subset.size);
        let mut keep: HashSet<&str, RandomState> =
            HashSet::with_capacity_and_hasher(chosen.len(), RandomState::default());
        keep.extend(chosen.iter().copied());
        let removals = state
            .peers
            .keys()
            .filter(|id| !keep.contains(id.as_str()))
            .map(|id| {
                let detail = if subset.offered.contains_key(id) {
                    "left the subset"
                } else {
                    ""
                };
                (id.clone(), detail)
            })
            .collect();
        let additions = chosen
            .into_iter()
            .filter(|id| !state.peers.contains_key(*id))
            .map(|id| subset.offered[id].clone())
            .collect();
        (removals, additions)
    }
}
