//! Introspection: snapshots of a list, and the messages that describe why it has no peer.

use std::time::Duration;

use super::eligibility::Class;
use super::membership::Slot;
use super::ListShared;
use crate::introspect::{ListIntrospection, PeerIntrospection};
use crate::peer::PeerId;

impl ListShared {
    /// The peers, in the order they were added.
    fn peer_snapshots(&self, state: &super::membership::State) -> Vec<PeerIntrospection> {
        self.peer_snapshots_of(state, state.peers.iter().collect())
    }

    /// The given peers' snapshots, in the order they were added.
    pub(super) fn peer_snapshots_of(
        &self,
        state: &super::membership::State,
        mut slots: Vec<(&PeerId, &Slot)>,
    ) -> Vec<PeerIntrospection> {
        let now = self.clock.now();
        slots.sort_unstable_by_key(|(_, s)| s.seq);
        slots
            .into_iter()
            .map(|(id, slot)| {
                let (status, pending) = match &slot.peer {
                    None => ("uninitialized", 0),
                    Some(peer) => (slot.status(peer).as_str(), peer.pending()),
                };
                let ejected_for = (slot.ejected_until != 0).then(|| {
                    Duration::from_nanos(slot.ejected_until.saturating_sub(self.stamp_at(now)))
                });
                let peer = slot.peer.as_ref();
                PeerIntrospection {
                    id: id.to_string(),
                    status: status.to_owned(),
                    pending,
                    weight: slot.weight,
                    zone: slot.zone.as_deref().map(|z| z.to_string()),
                    priority: state.routing.priority_of(slot.locality),
                    admin: if state.disabled.contains(id) {
                        "disabled"
                    } else {
                        "enabled"
                    }
                    .to_owned(),
                    ejected: ejected_for.is_some(),
                    ejected_for_ms: ejected_for
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    ejections: slot.ejections,
                    consecutive_failures: peer.map_or(0, |p| p.consecutive_failures()),
                    chosen: peer.map_or(0, |p| p.chosen()),
                    failures: peer.map_or(0, |p| p.failures()),
                    sessions: state.sessions.count(id),
                }
            })
            .collect()
    }

    pub(super) fn introspect(&self) -> ListIntrospection {
        let state = self.lock();
        let peers = self.peer_snapshots(&state);
        let available = state.tally.offered();
        let total = peers.len();
        let (max_pending, max_pending_per_peer, overloaded) = self.breaker_numbers();
        let (state_name, title) = if self.is_running() {
            ("running", "Running")
        } else {
            ("idle", "Idle")
        };
        ListIntrospection {
            strategy: self.name().to_owned(),
            transport: self.transport.name().to_owned(),
            state: state_name.to_owned(),
            summary: format!("{title} ({available}/{total} available)"),
            available,
            total,
            panic: state.tally.panic,
            ejected: state.tally.ejected,
            disabled: peers.iter().filter(|p| p.admin == "disabled").count(),
            chosen: peers.iter().map(|p| p.chosen).sum(),
            failures: peers.iter().map(|p| p.failures).sum(),
            ejections: peers.iter().map(|p| u64::from(p.ejections)).sum(),
            name: self.list_name.to_string(),
            pending: peers.iter().map(|p| p.pending).sum(),
            max_pending,
            max_pending_per_peer,
            overloaded,
            sessions: state.sessions.open(),
            subset: state.subset.as_ref().map(|s| s.introspect()),
            priorities: state
                .routing
                .priorities(&self.routing, self.ejection.as_ref()),
            peers,
        }
    }

    pub(super) fn backends(&self) -> Vec<PeerIntrospection> {
        let state = self.lock();
        self.peer_snapshots(&state)
    }

    pub(super) fn peer_status(&self, id: &str) -> Option<crate::PeerStatus> {
        let state = self.lock();
        let slot = state.peers.get(id)?;
        Some(
            slot.peer
                .as_ref()
                .map_or_else(Default::default, |p| crate::PeerStatus {
                    connection_status: slot.status(p),
                    pending: p.pending(),
                }),
        )
    }

    /// "peer list has 3 peers but none are available (2 unavailable, 1 connecting)", from
    /// the tally (O(1)).
    pub(super) fn unavailable_message(&self) -> String {
        let state = self.lock();
        let total = state.peers.len();
        if total == 0 {
            return format!(
                "{:?} peer list has no peers; add some with update()",
                self.name()
            );
        }
        let tally = &state.tally;
        let ejected_out = if tally.panic {
            0
        } else {
            tally.count(Class::Ejected)
        };
        let parts: Vec<String> = [
            (
                tally.count(Class::Unavailable) + tally.count(Class::Idle),
                "unavailable",
            ),
            (tally.count(Class::Connecting), "connecting"),
            (tally.count(Class::Retaining), "still being retained"),
            (tally.offered(), "available a moment ago"),
            (tally.count(Class::Disabled), "disabled"),
            (ejected_out, "ejected"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        format!(
            "{:?} peer list has {total} peer{} but none are available ({})",
            self.name(),
            if total == 1 { "" } else { "s" },
            parts.join(", ")
        )
    }
}
