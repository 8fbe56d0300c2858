//! The result of `choose`: a peer plus the token that ends the request.

use std::fmt;
use std::time::Duration;

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
}

impl Choice {
    pub(crate) fn new(request: InFlight) -> Choice {
        Choice {
            request: Some(request),
        }
    }

    fn in_flight(&self) -> &InFlight {
        self.request
            .as_ref()
            .expect("a live choice always holds its request")
    }

    /// The chosen peer's id.
    pub fn peer(&self) -> &PeerId {
        self.in_flight().peer().id()
    }

    /// The chosen peer's current status (this request included in `pending`).
    pub fn status(&self) -> crate::PeerStatus {
        self.in_flight().peer().status()
    }

    /// End the request: pending goes down, and the outcome (and latency, if known) is
    /// recorded for the peer.
    pub fn finish(mut self, outcome: Outcome, latency: Option<Duration>) {
        self.end(outcome, latency);
    }

    /// Turns the choice into an opaque token for foreign code (the C ABI), keeping the
    /// request pending. Exactly one [`Choice::from_raw`] must follow.
    pub fn into_raw(mut self) -> *const () {
        self.request
            .take()
            .expect("a live choice always holds its request")
            .into_raw()
    }

    /// Rebuilds a choice from [`Choice::into_raw`]'s token.
    ///
    /// # Safety
    /// `token` must come from `into_raw` and be passed here exactly once.
    pub unsafe fn from_raw(token: *const ()) -> Choice {
        // SAFETY: the caller guarantees the token came from into_raw and is used once.
        Choice::new(unsafe { InFlight::from_raw(token) })
    }

    fn end(&mut self, _outcome: Outcome, _latency: Option<Duration>) {
        // Dropping the in-flight request ends it (pending goes down).
        drop(self.request.take());
    }
}

impl Drop for Choice {
    fn drop(&mut self) {
        self.end(Outcome::Cancelled, None);
    }
}

impl fmt::Debug for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Choice").field("peer", self.peer()).finish()
    }
}
