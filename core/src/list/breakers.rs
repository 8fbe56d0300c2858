//! Circuit breakers (Envoy's, on requests in flight): list rules that every strategy gets
//! without knowing of them.
//!
//! * **`max_pending`** (the list): with that many of the list's requests in flight,
//!   `choose` fails at once with `overloaded` (whatever the deadline). A choose reserves
//!   its place in the list's count before it asks the strategy, so the limit is never
//!   exceeded, also under concurrent chooses; the place is freed when the request ends.
//! * **`max_pending_per_peer`**: a peer with that many requests in flight is not chosen.
//!   The strategy picks as usual; when its pick is at the limit, the list takes the pick
//!   back (pending and `chosen` go back down) and asks again: round-robin and weighted
//!   round-robin move on, random strategies draw again, hash strategies hash a varied key
//!   (so the key lands on another peer, as Envoy's retries do). It asks at most as many
//!   times as the strategy has peers, and at most 16; when every answer was at its limit,
//!   `choose` fails at once with `overloaded`. A peer is never taken beyond its limit (a
//!   pick that raced past it is taken back too).
//!
//! Sessions obey both: opening one is a choose, and a failover that must start a request on
//! a peer it picked itself (past the strategy) takes its place under `max_pending` and
//! skips peers at `max_pending_per_peer`; when a breaker is why no peer is found, the
//! failover fails at once with `overloaded`.
//!
//! Neither costs a list without breakers anything but one branch in `choose`; there is no
//! pass over the peers, and no strategy changes. The per-peer breaker costs a pick only at
//! the limit (the re-pick); `max_pending` costs one atomic add and one subtract on a
//! counter the list's threads share, per request.
//!
//! Both are off by default. (Envoy's defaults are 1024 pending and 1024 requests per
//! cluster; peerlb keeps no limit unless asked, so lists that existed before keep working
//! as they did.)

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::ListShared;
use crate::choice::Choice;
use crate::error::{Error, Result};
use crate::metrics::BreakerSample;
use crate::peer::{InFlight, PeerId, PeerRef};
use crate::request::Request;

/// How many times a choose asks the strategy again past peers at their limit, at most.
const MAX_REPICKS: usize = 16;

/// The list's count of requests in flight, shared with its peers (a request's end frees
/// its place, from the finishing thread).
#[derive(Debug, Default)]
pub(crate) struct Admission {
    pending: AtomicUsize,
}

impl Admission {
    /// Takes a place below `limit`; false (and nothing taken) at the limit.
    fn try_reserve(&self, limit: usize) -> bool {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= limit {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// A request ended (or a reservation was not used).
    #[inline]
    pub(crate) fn release(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

/// A list's circuit breakers.
pub(super) struct Breakers {
    max_pending: Option<usize>,
    max_pending_per_peer: Option<usize>,
    admission: Option<Arc<Admission>>,
    /// Peers the strategy is offered (set at the end of every commit).
    offered: AtomicUsize,
    overloaded_list: AtomicU64,
    overloaded_peers: AtomicU64,
}

fn check_limit(name: &str, limit: Option<usize>) -> Result<()> {
    match limit {
        Some(0) => Err(Error::InvalidArgument(format!(
            "{name} must be at least 1 (leave it out for no limit)"
        ))),
        _ => Ok(()),
    }
}

impl Breakers {
    /// The breakers of a list made with these limits; `None` when there are none.
    pub(super) fn new(
        max_pending: Option<usize>,
        max_pending_per_peer: Option<usize>,
    ) -> Result<Option<Breakers>> {
        check_limit("max_pending", max_pending)?;
        check_limit("max_pending_per_peer", max_pending_per_peer)?;
        if max_pending.is_none() && max_pending_per_peer.is_none() {
            return Ok(None);
        }
        Ok(Some(Breakers {
            max_pending,
            max_pending_per_peer,
            admission: max_pending.map(|_| Arc::new(Admission::default())),
            offered: AtomicUsize::new(0),
            overloaded_list: AtomicU64::new(0),
            overloaded_peers: AtomicU64::new(0),
        }))
    }

    /// The counter the list's peers free their place in.
    pub(super) fn admission(&self) -> Option<Arc<Admission>> {
        self.admission.clone()
    }

    pub(super) fn set_offered(&self, offered: usize) {
        self.offered.store(offered, Ordering::Relaxed);
    }

    pub(super) fn max_pending(&self) -> Option<usize> {
        self.max_pending
    }

    pub(super) fn max_pending_per_peer(&self) -> Option<usize> {
        self.max_pending_per_peer
    }

    /// Chooses refused so far, by either breaker.
    pub(super) fn overloaded(&self) -> u64 {
        self.overloaded_list.load(Ordering::Relaxed) + self.overloaded_peers.load(Ordering::Relaxed)
    }

    /// The breakers for a scrape (`saturated`: peers at their limit now).
    pub(super) fn sample(&self, saturated: usize) -> BreakerSample {
        BreakerSample {
            max_pending: self.max_pending,
            max_pending_per_peer: self.max_pending_per_peer,
            overloaded_list: self.overloaded_list.load(Ordering::Relaxed),
            overloaded_peers: self.overloaded_peers.load(Ordering::Relaxed),
            saturated,
        }
    }
}

impl ListShared {
    /// The strategy's pick under the circuit breakers: `Ok(None)` when no peer is
    /// available (the caller may wait), `Err(overloaded)` when a breaker refuses. Lists
    /// without breakers take [`ListShared::try_choose`] unchanged.
    pub(super) fn pick(&self, request: &Request<'_>) -> Result<Option<Choice>> {
        let Some(breakers) = &self.breakers else {
            return Ok(self.try_choose(request));
        };
        if !self.is_running() {
            return Ok(None);
        }
        let admission = breakers.admission.as_deref();
        if let (Some(admission), Some(limit)) = (admission, breakers.max_pending) {
            if !admission.try_reserve(limit) {
                breakers.overloaded_list.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Overloaded(format!(
                    "{:?} peer list is overloaded: {} requests in flight reach its max_pending of {limit}",
                    &*self.list_name,
                    admission.pending().max(limit)
                )));
            }
        }
        let picked = match breakers.max_pending_per_peer {
            None => Ok(self.strategy_choose(request)),
            Some(limit) => self.pick_below(breakers, limit, request),
        };
        match picked {
            Ok(Some(in_flight)) => Ok(Some(self.hand_out(in_flight))),
            other => {
                // The reservation was not used.
                if let Some(admission) = admission {
                    admission.release();
                }
                other.map(|_| None)
            }
        }
    }

    /// The fast path under circuit breakers: one pick, `Some` when it is within both
    /// limits; anything else (a limit reached, no peer) is `None`, and the slow path
    /// ([`ListShared::pick`]) works out what it is (another pick, a wait, `overloaded`).
    #[inline]
    pub(super) fn try_pick(&self, breakers: &Breakers, request: &Request<'_>) -> Option<Choice> {
        let admission = breakers.admission.as_deref();
        if let (Some(admission), Some(limit)) = (admission, breakers.max_pending) {
            if !admission.try_reserve(limit) {
                return None;
            }
        }
        let within = |f: &InFlight| match breakers.max_pending_per_peer {
            Some(limit) => f.peer().pending() <= limit,
            None => true,
        };
        let in_flight = match self.strategy_choose(request) {
            Some(f) if within(&f) => f,
            other => {
                if let Some(f) = other {
                    if let Some(series) = f.peer().series() {
                        series.limit_skipped();
                    }
                    f.undo();
                }
                if let Some(admission) = admission {
                    admission.release();
                }
                return None;
            }
        };
        Some(self.hand_out(in_flight))
    }

    /// Asks the strategy for a peer below `limit` requests in flight.
    fn pick_below(
        &self,
        breakers: &Breakers,
        limit: usize,
        request: &Request<'_>,
    ) -> Result<Option<InFlight>> {
        let attempts = breakers
            .offered
            .load(Ordering::Relaxed)
            .clamp(1, MAX_REPICKS);
        let mut varied_key = Vec::new();
        for attempt in 0..attempts {
            let in_flight = match (attempt, request.shard_key()) {
                (0, _) | (_, None) => self.strategy_choose(request),
                (n, Some(key)) => {
                    varied_key.clear();
                    varied_key.extend_from_slice(key);
                    varied_key.extend_from_slice(format!("#limit{n}").as_bytes());
                    self.strategy
                        .choose(&Request::new().with_shard_key(&varied_key))
                }
            };
            let Some(in_flight) = in_flight else {
                return Ok(None);
            };
            if in_flight.peer().pending() <= limit {
                return Ok(Some(in_flight));
            }
            if let Some(series) = in_flight.peer().series() {
                series.limit_skipped();
            }
            in_flight.undo();
        }
        breakers.overloaded_peers.fetch_add(1, Ordering::Relaxed);
        Err(Error::Overloaded(format!(
            "{:?} peer list is overloaded: every peer it tried ({attempts}) has max_pending_per_peer \
             ({limit}) requests in flight",
            &*self.list_name
        )))
    }

    /// A picked request becomes a choice (what `try_choose` does after the strategy).
    fn hand_out(&self, in_flight: InFlight) -> Choice {
        if self.notify_chosen {
            self.strategy.pending_changed(&in_flight.peer_ref());
        }
        if self.notify_outcome {
            // Its peer's other requests in flight (this one is counted already).
            let others = in_flight.peer().pending().saturating_sub(1);
            let others = u32::try_from(others).unwrap_or(u32::MAX);
            return Choice::timed(in_flight, self.stamp(), others);
        }
        Choice::new(in_flight)
    }

    /// Takes a place under `max_pending` for a request started outside `pick` (a
    /// session's failover onto a peer it picked itself); false at the limit. Always true
    /// without that breaker.
    pub(super) fn reserve_place(&self) -> bool {
        let Some(breakers) = &self.breakers else {
            return true;
        };
        match (breakers.admission.as_deref(), breakers.max_pending) {
            (Some(admission), Some(limit)) => admission.try_reserve(limit),
            _ => true,
        }
    }

    /// Whether a peer is below the `max_pending_per_peer` breaker (always, without it).
    pub(super) fn peer_limit_check(&self) -> impl Fn(&PeerRef) -> bool {
        let limit = self.breakers.as_ref().and_then(|b| b.max_pending_per_peer);
        move |peer: &PeerRef| limit.map_or(true, |limit| peer.pending() < limit)
    }

    /// Why a session's failover, which found no peer, fails at once with `overloaded`: the
    /// list is at `max_pending`, or every available peer but the one it left is at
    /// `max_pending_per_peer` (Envoy's overflow: no waiting). `None` when no breaker is
    /// the reason. Counted as the breaker's refusal.
    pub(super) fn failover_refusal(&self, session: u64, left: Option<&PeerId>) -> Option<Error> {
        let breakers = self.breakers.as_ref()?;
        if let (Some(admission), Some(limit)) =
            (breakers.admission.as_deref(), breakers.max_pending)
        {
            if admission.pending() >= limit {
                breakers.overloaded_list.fetch_add(1, Ordering::Relaxed);
                return Some(Error::Overloaded(format!(
                    "{:?} peer list is overloaded: session {session} cannot fail over, {} \
                     requests in flight reach its max_pending of {limit}",
                    &*self.list_name,
                    admission.pending().max(limit)
                )));
            }
        }
        let limit = breakers.max_pending_per_peer?;
        let state = self.lock();
        let mut others = state
            .peers
            .iter()
            .filter(|(id, slot)| {
                slot.offered
                    && slot.phase == super::membership::Phase::Retained
                    && Some(*id) != left
            })
            .filter_map(|(_, slot)| slot.peer.as_ref())
            .peekable();
        others.peek()?;
        if others.all(|peer| peer.pending() >= limit) {
            drop(state);
            breakers.overloaded_peers.fetch_add(1, Ordering::Relaxed);
            return Some(Error::Overloaded(format!(
                "{:?} peer list is overloaded: session {session} cannot fail over, every other \
                 available peer has max_pending_per_peer ({limit}) requests in flight",
                &*self.list_name
            )));
        }
        None
    }

    /// Whether the list has circuit breakers (its chooses take [`ListShared::pick`]).
    #[inline]
    pub(super) fn has_breakers(&self) -> bool {
        self.breakers.is_some()
    }

    /// The breakers' numbers for introspection: (`max_pending`, `max_pending_per_peer`,
    /// chooses refused).
    pub(super) fn breaker_numbers(&self) -> (Option<usize>, Option<usize>, u64) {
        match &self.breakers {
            Some(b) => (b.max_pending(), b.max_pending_per_peer(), b.overloaded()),
            None => (None, None, 0),
        }
    }
}
