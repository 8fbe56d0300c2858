//! The result of `choose`: a peer plus the token that ends the request.

use std::fmt;
use std::time::Duration;

use crate::load_report::LoadReport;
use crate::peer::{InFlight, PeerId};
use crate::request::Outcome;

/// A chosen peer. The request counts as pending on that peer until the choice is finished.
///
/// [`Choice::finish`] consumes it, so a request ends exactly once; dropping an unfinished
/// choice finishes it as [`Outcome::Cancelled`]. A choice stays valid after its peer is
/// removed, or its list stopped or dropped.
///
/// ```
/// use std::time::Duration;
/// use peerlb::{ListOptions, Outcome, PeerList, Request};
/// let list = PeerList::new(ListOptions::default().shuffle(false)).unwrap();
/// list.update(["a:1"], None::<&str>).unwrap();
/// list.start().unwrap();
/// let choice = list.choose(&Request::new()).unwrap();
/// assert_eq!(choice.peer().as_str(), "a:1");
/// assert_eq!(choice.status().pending, 1);
/// choice.finish(Outcome::Ok, Some(Duration::from_millis(3)));
/// ```
pub struct Choice {
    request: Option<InFlight>,
    /// When it was chosen, as a stamp of its list's clock (see `ListShared::stamp`); only
    /// recorded for strategies that want outcomes, 0 otherwise.
    started: u64,
    /// The peer's other requests in flight when this one started (recorded with `started`).
    pending_at_start: u32,
}

/// What a raw token points at when the choice carries a start time (tagged by bit 0;
/// plain tokens are peer pointers, which are 8-byte aligned).
struct TimedToken {
    request: InFlight,
    started: u64,
    pending_at_start: u32,
}

impl Choice {
    #[inline]
    pub(crate) fn new(request: InFlight) -> Choice {
        Choice {
            request: Some(request),
            started: 0,
            pending_at_start: 0,
        }
    }

    /// A choice of a strategy that wants outcomes: its start time, and how many other
    /// requests its peer had in flight then.
    #[inline]
    pub(crate) fn timed(request: InFlight, started: u64, pending_at_start: u32) -> Choice {
        Choice {
            request: Some(request),
            started,
            pending_at_start,
        }
    }

    #[inline]
    fn in_flight(&self) -> &InFlight {
        self.request
            .as_ref()
            .expect("a live choice always holds its request")
    }

    /// The chosen peer's id.
    #[inline]
    pub fn peer(&self) -> &PeerId {
        self.in_flight().peer().id()
    }

    /// The chosen peer's current status (this request included in `pending`).
    pub fn status(&self) -> crate::PeerStatus {
        self.in_flight().peer().status()
    }

    /// Counts this choice as a retry in its list's metrics (a retry helper's attempt after
    /// the first).
    pub(crate) fn count_retry(&self) {
        if let Some(list) = self.in_flight().peer().list() {
            list.count_retry();
        }
    }

    /// Counts, in its peer's metrics, a session failing over away from the peer.
    pub(crate) fn count_failover(&self) {
        if let Some(series) = self.in_flight().peer().series() {
            series.failed_over();
        }
    }

    /// A new reference to the chosen peer.
    pub(crate) fn peer_ref(&self) -> crate::peer::PeerRef {
        self.in_flight().peer_ref()
    }

    /// Records an `ok` for the peer without ending the request (a session's successful
    /// exchange): the peer's failure streak ends.
    pub(crate) fn record_ok(&self) {
        self.in_flight().peer().record_outcome(Outcome::Ok);
    }

    /// Ends a session's attempt: the outcome counts for the peer (its failure streak and
    /// ejection) as [`Choice::finish`]'s would, but the strategy learns no latency from
    /// it (how long a session lasted says nothing about the peer's speed).
    pub(crate) fn finish_session(mut self, outcome: Outcome) {
        let Some(request) = self.request.take() else {
            return;
        };
        if request.peer().record_outcome(outcome) {
            let list = request.peer().list();
            let peer = request.peer_ref();
            drop(request);
            if let Some(list) = list {
                list.failure_streak(&peer);
            }
        }
    }

    /// End the request: pending goes down, and the outcome (and latency, if known) is
    /// recorded for the peer.
    #[inline]
    pub fn finish(mut self, outcome: Outcome, latency: Option<Duration>) {
        self.end(outcome, latency, None);
    }

    /// [`Choice::finish`] with the backend's own report of its load, when it sent one (see
    /// [`LoadReport`]; e.g. parsed from its `endpoint-load-metrics` response header).
    /// Strategies that use reports (`weighted-round-robin:orca`, `prequal`) hear it before
    /// the outcome; the others ignore it. Numbers that are not finite and ≥ 0 are ignored
    /// ([`LoadReport::validate`] tells a caller which).
    ///
    /// ```
    /// use peerlb::{ListOptions, LoadReport, Outcome, PeerList, Request};
    /// let list = PeerList::new(ListOptions::default().strategy_name("prequal").unwrap()).unwrap();
    /// list.update(["a:1"], None::<&str>).unwrap();
    /// list.start().unwrap();
    /// let choice = list.choose(&Request::new()).unwrap();
    /// let load: LoadReport = "TEXT cpu_utilization=0.4, rps_fractional=80, named_metrics.rif=3".parse().unwrap();
    /// choice.finish_with_load(Outcome::Ok, None, Some(&load));
    /// ```
    #[inline]
    pub fn finish_with_load(
        mut self,
        outcome: Outcome,
        latency: Option<Duration>,
        load: Option<&LoadReport>,
    ) {
        self.end(outcome, latency, load);
    }

    /// Turns the choice into an opaque token for foreign code (the C ABI), keeping the
    /// request pending. Exactly one [`Choice::from_raw`] must follow.
    #[inline]
    pub fn into_raw(mut self) -> *const () {
        let request = self
            .request
            .take()
            .expect("a live choice always holds its request");
        if self.started == 0 {
            return request.into_raw();
        }
        let boxed = Box::into_raw(Box::new(TimedToken {
            request,
            started: self.started,
            pending_at_start: self.pending_at_start,
        }));
        // Tag bit 0 (a box of TimedToken is at least 8-aligned); pointer arithmetic keeps
        // the pointer's provenance.
        boxed.cast::<u8>().wrapping_add(1).cast::<()>().cast_const()
    }

    /// Rebuilds a choice from [`Choice::into_raw`]'s token.
    ///
    /// # Safety
    /// `token` must come from `into_raw` and be passed here exactly once.
    #[inline]
    pub unsafe fn from_raw(token: *const ()) -> Choice {
        if token as usize & 1 == 1 {
            let ptr = token
                .cast::<u8>()
                .wrapping_sub(1)
                .cast::<TimedToken>()
                .cast_mut();
            // SAFETY: a tagged token is a leaked TimedToken box from into_raw, used once.
            let timed = unsafe { Box::from_raw(ptr) };
            return Choice::timed(timed.request, timed.started, timed.pending_at_start);
        }
        // SAFETY: the caller guarantees the token came from into_raw and is used once.
        Choice::new(unsafe { InFlight::from_raw(token) })
    }

    #[inline]
    fn end(&mut self, outcome: Outcome, latency: Option<Duration>, load: Option<&LoadReport>) {
        let Some(request) = self.request.take() else {
            return;
        };
        let peer = request.peer();
        let streak_complete = peer.record_outcome(outcome);
        if let (Some(latency), Some(series)) = (latency, peer.series()) {
            series.record_latency(latency);
        }
        if peer.wants_outcome() || streak_complete {
            self.end_and_report(request, outcome, latency, load, streak_complete);
        } else {
            // Dropping the in-flight request ends it (pending goes down).
            drop(request);
        }
    }

    /// Ends the request and tells the list how it went: the strategy (when it wants
    /// outcomes) and outlier detection (when a run of failures is complete).
    #[cold]
    #[inline(never)]
    fn end_and_report(
        &self,
        request: InFlight,
        outcome: Outcome,
        latency: Option<Duration>,
        load: Option<&LoadReport>,
        streak_complete: bool,
    ) {
        let list = request.peer().list();
        let wants_outcome = request.peer().wants_outcome();
        let peer = request.end();
        if let Some(list) = list {
            if wants_outcome {
                list.request_finished(
                    &peer,
                    outcome,
                    latency,
                    load,
                    self.started,
                    self.pending_at_start,
                );
            }
            if streak_complete {
                list.failure_streak(&peer);
            }
        }
    }
}

impl Drop for Choice {
    #[inline]
    fn drop(&mut self) {
        self.end(Outcome::Cancelled, None, None);
    }
}

impl fmt::Debug for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Choice").field("peer", self.peer()).finish()
    }
}
