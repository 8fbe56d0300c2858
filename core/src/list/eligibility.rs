//! Eligibility: which peers the strategy is offered.
//!
//! A peer record's *class* says what it is now: idle (not retained), being retained,
//! disabled by an admin, unavailable, connecting, ejected, or healthy. The strategy is
//! offered the healthy ones, and the ejected ones too while the **panic floor** is active:
//! when fewer than `panic_percent` of the enabled peers are healthy, ejections are ignored
//! (Envoy's panic threshold). The [`Tally`] counts records per class as they change, so
//! the floor costs O(1) per change; when it flips, only the ejected records are looked at
//! again.
//!
//! Outlier ejection (see [`crate::ejection`]): a peer whose run of failures is complete is
//! ejected (unless too many are already) until a time that grows with each ejection; a
//! timer restores it. Admin `disable`/`enable`/`reset` change a record's class too.

use std::cmp::Ordering as CmpOrdering;
use std::time::{Duration, Instant};

use super::commit::Commit;
use super::membership::{Phase, Slot};
use super::ListShared;
use crate::admin::AdminResult;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::peer::{ConnectionStatus, PeerId, PeerRef};

/// What a peer record is now, as far as offering it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// Not retained: the list is not running (or the record was just added to an idle list).
    Idle = 0,
    /// The transport's `retain` is running.
    Retaining = 1,
    /// Retained, but an admin disabled it.
    Disabled = 2,
    /// Retained, reported unavailable.
    Unavailable = 3,
    /// Retained, reported connecting.
    Connecting = 4,
    /// Retained, available, ejected (offered only under the panic floor).
    Ejected = 5,
    /// Retained, available, enabled, not ejected: offered.
    Healthy = 6,
}

pub(super) const CLASSES: usize = 7;

/// Records per class, and whether the panic floor is active.
#[derive(Debug, Default)]
pub(super) struct Tally {
    counts: [usize; CLASSES],
    /// Records with an ejection in force (whatever their class).
    pub(super) ejected: usize,
    /// Whether the panic floor is active (in any priority level; see `routing.rs`).
    pub(super) panic: bool,
    /// Records offered to the strategies.
    offered: usize,
}

impl Tally {
    pub(super) fn count(&self, class: Class) -> usize {
        self.counts[class as usize]
    }

    /// Records not retained (uninitialized).
    pub(super) fn count_idle(&self) -> usize {
        self.count(Class::Idle)
    }

    fn moved(&mut self, from: Option<Class>, to: Option<Class>) {
        if let Some(c) = from {
            self.counts[c as usize] -= 1;
        }
        if let Some(c) = to {
            self.counts[c as usize] += 1;
        }
    }

    /// How many peers the strategy is offered.
    pub(super) fn offered(&self) -> usize {
        self.offered
    }

    fn offer_flipped(&mut self, offered: bool) {
        if offered {
            self.offered += 1;
        } else {
            self.offered -= 1;
        }
    }
}

/// When an ejected peer is due back. Ordered so that a `BinaryHeap` pops the earliest.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Restoration {
    until: Instant,
    /// The record's `seq` (a removed and re-added peer is another record).
    seq: u64,
    id: PeerId,
}

impl Ord for Restoration {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .until
            .cmp(&self.until)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Restoration {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

fn classify(slot: &Slot, disabled: bool) -> Class {
    match slot.phase {
        Phase::Uninitialized => Class::Idle,
        Phase::Retaining => Class::Retaining,
        Phase::Retained if disabled => Class::Disabled,
        Phase::Retained => match slot.seen {
            ConnectionStatus::Unavailable => Class::Unavailable,
            ConnectionStatus::Connecting => Class::Connecting,
            ConnectionStatus::Available if slot.ejected_until != 0 => Class::Ejected,
            ConnectionStatus::Available => Class::Healthy,
        },
    }
}

impl Commit<'_> {
    /// Brings `id`'s record up to date (see [`Commit::reconcile_at`]).
    pub(super) fn reconcile(&mut self, id: &PeerId) {
        if let Some(i) = self.state.peers.get_index_of(id) {
            self.reconcile_at(i);
        }
    }

    /// Brings the record at index `i` up to date: acts on its peer's status (events),
    /// recomputes its class (the tally) and its offer to the strategy. Every change to a
    /// record ends here.
    pub(super) fn reconcile_at(&mut self, i: usize) {
        let state = &mut *self.state;
        let Some((id, slot)) = state.peers.get_index_mut(i) else {
            return;
        };
        let disabled = !state.disabled.is_empty() && state.disabled.contains(id);
        let mut status_event = None;
        if slot.phase == Phase::Retained {
            let status = slot
                .peer
                .as_ref()
                .expect("a retained record has its peer")
                .connection_status();
            if status != slot.seen {
                let available = ConnectionStatus::Available;
                if status == available {
                    status_event = Some((EventKind::Available, ""));
                } else if slot.seen == available {
                    status_event = Some((EventKind::Unavailable, status.as_str()));
                }
                slot.seen = status;
            }
        }
        let class = classify(slot, disabled);
        let before = std::mem::replace(&mut slot.class, class);
        let wanted = class == Class::Healthy
            || (class == Class::Ejected && state.routing.panics(slot.locality));
        if wanted != slot.offered {
            state.tally.offer_flipped(wanted);
        }
        let flip = (wanted != slot.offered)
            .then(|| slot.peer.clone())
            .flatten();
        slot.offered = wanted;
        state.tally.moved(Some(before), Some(class));
        state
            .routing
            .moved(slot.locality, Some(before), Some(class));
        if let Some(peer) = flip {
            if wanted {
                self.offered.push(peer);
            } else {
                self.withdrawn.push(peer);
            }
        }
        if let Some((kind, detail)) = status_event {
            if self.is_recording() {
                let id = self
                    .state
                    .peers
                    .get_index(i)
                    .expect("still there")
                    .0
                    .clone();
                self.event(kind, &id, detail);
            }
        }
    }

    /// Counts the new record at index `i` (it starts idle).
    pub(super) fn count_new(&mut self, i: usize) {
        self.state.tally.moved(None, Some(Class::Idle));
        let locality = self.state.peers[i].locality;
        self.state.routing.moved(locality, None, Some(Class::Idle));
    }

    /// Takes a removed record out of the tally and the strategy.
    pub(super) fn forget(&mut self, slot: &mut Slot) {
        self.state.tally.moved(Some(slot.class), None);
        self.state
            .routing
            .moved(slot.locality, Some(slot.class), None);
        if slot.offered {
            self.state.tally.offer_flipped(false);
        }
        if std::mem::take(&mut slot.ejected_until) != 0 {
            self.state.tally.ejected -= 1;
        }
        if std::mem::take(&mut slot.offered) {
            if let Some(peer) = &slot.peer {
                self.withdrawn.push(peer.clone());
            }
        }
    }

    /// Recomputes the panic floor of every priority level from its counts (one level: the
    /// list's tally); for the levels where it flips, re-offers or withdraws the ejected
    /// peers (the only ones it decides on).
    pub(super) fn settle_panic_floor(&mut self) {
        let (flipped, panic) = self.state.routing.settle_panic(
            self.list.ejection.as_ref(),
            self.list.is_running(),
            self.list.routing.overprovisioning,
        );
        self.state.tally.panic = panic;
        if flipped.is_empty() {
            return;
        }
        // Every ejected record has an entry in the restoration queue (some entries are
        // stale): O(ejected), not a pass over the list.
        let peers = &self.state.peers;
        let routing = &self.state.routing;
        let ejected: Vec<PeerId> = self
            .state
            .restorations
            .iter()
            .filter(|r| {
                peers.get(&r.id).is_some_and(|s| {
                    s.class == Class::Ejected && flipped.contains(&routing.priority_of(s.locality))
                })
            })
            .map(|r| r.id.clone())
            .collect();
        for id in ejected {
            self.reconcile(&id);
        }
    }

    /// Ends `id`'s ejection (restored by time or by an admin).
    fn restore(&mut self, id: &PeerId, detail: &str) {
        let Some(slot) = self.state.peers.get_mut(id) else {
            return;
        };
        if std::mem::take(&mut slot.ejected_until) == 0 {
            return;
        }
        if let Some(peer) = &slot.peer {
            peer.clear_streak();
        }
        self.state.tally.ejected -= 1;
        self.event(EventKind::Restored, id, detail);
        self.reconcile(id);
    }
}

impl ListShared {
    /// `peer` just completed a run of failures long enough to eject it: eject it unless
    /// it is ejected or disabled already, or too many peers are ejected.
    pub(crate) fn failure_streak(&self, peer: &PeerRef) {
        let Some(policy) = self.ejection else {
            return;
        };
        self.commit(|c| {
            if !c.list.is_running() {
                return;
            }
            let id = peer.id();
            let total = c.state.peers.len();
            let ejected = c.state.tally.ejected;
            let disabled = c.state.disabled.contains(id);
            let Some(slot) = c.state.peers.get_mut(id).filter(|s| s.holds(peer)) else {
                return;
            };
            if slot.ejected_until != 0 || disabled {
                // Already out of rotation (chosen only under the panic floor) or out by hand.
                peer.clear_streak();
                return;
            }
            if ejected >= policy.max_ejected(total) {
                // The streak goes on; the next failure tries again.
                return;
            }
            slot.ejections = slot.ejections.saturating_add(1);
            if let Some(series) = &slot.series {
                series.ejected();
            }
            let time = policy.ejection_time(slot.ejections);
            let now = c.list.clock.now();
            // A time too far to represent is as good as forever: a year.
            let until = now
                .checked_add(time)
                .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
                .unwrap_or(now);
            slot.ejected_until = c.list.stamp_at(until);
            let detail = format!(
                "{} consecutive failures; ejected for {:?} (ejection {})",
                peer.consecutive_failures(),
                time,
                slot.ejections
            );
            let seq = slot.seq;
            peer.clear_streak();
            c.state.tally.ejected += 1;
            c.state.restorations.push(Restoration {
                until,
                seq,
                id: id.clone(),
            });
            c.timers.push(until);
            c.event(EventKind::Ejected, id, detail);
            c.reconcile(id);
        });
    }

    /// Asks the clock to restore ejected peers at `until`.
    pub(super) fn schedule_restoration(&self, until: Instant) {
        let list = self.this.clone();
        self.clock.call_at(
            until,
            Box::new(move || {
                if let Some(list) = list.upgrade() {
                    list.restore_due();
                }
            }),
        );
    }

    /// Restores every peer whose ejection time is over: O(due × log ejected).
    fn restore_due(&self) {
        self.commit(|c| {
            let now = c.list.clock.now();
            while c.state.restorations.peek().is_some_and(|r| r.until <= now) {
                let r = c.state.restorations.pop().expect("peeked");
                let stamp = c.list.stamp_at(r.until);
                let current = c
                    .state
                    .peers
                    .get(&r.id)
                    .is_some_and(|s| s.seq == r.seq && s.ejected_until == stamp);
                if current {
                    c.restore(&r.id, "ejection time is over");
                }
            }
        });
    }

    pub(super) fn set_disabled(&self, id: &str, disabled: bool) -> Result<AdminResult> {
        let peer_id = PeerId::new(id)?;
        self.commit(|c| {
            if !c.state.peers.contains_key(&peer_id) {
                // Enabling a removed peer that is remembered as disabled forgets it.
                if !disabled && c.state.disabled.remove(&peer_id) {
                    return Ok(AdminResult::Success);
                }
                return Err(Error::PeerNotInList(peer_id.to_string()));
            }
            let changed = if disabled {
                c.state.disabled.insert(peer_id.clone())
            } else {
                c.state.disabled.remove(&peer_id)
            };
            if !changed {
                return Ok(AdminResult::NoActionRequired);
            }
            let (kind, detail) = if disabled {
                (EventKind::Disabled, "disabled by admin")
            } else {
                (EventKind::Enabled, "enabled by admin")
            };
            c.event(kind, &peer_id, detail);
            c.reconcile(&peer_id);
            Ok(AdminResult::Success)
        })
    }

    pub(super) fn reset(&self, id: &str) -> Result<AdminResult> {
        let peer_id = PeerId::new(id)?;
        self.commit(|c| {
            let Some(slot) = c.state.peers.get_mut(&peer_id) else {
                return Err(Error::PeerNotInList(peer_id.to_string()));
            };
            let streak = slot.peer.as_ref().map_or(0, |p| p.consecutive_failures());
            if slot.ejected_until == 0 && slot.ejections == 0 && streak == 0 {
                return Ok(AdminResult::NoActionRequired);
            }
            slot.ejections = 0;
            if let Some(peer) = &slot.peer {
                peer.clear_streak();
            }
            c.restore(&peer_id, "reset by admin");
            Ok(AdminResult::Success)
        })
    }
}
