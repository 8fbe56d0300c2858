//! The result of `choose`: a peer plus the token that ends the request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::peer::{Peer, PeerId};
use crate::request::Outcome;

/// A chosen peer. The request counts as pending on that peer until the choice is finished.
///
/// [`Choice::finish`] consumes it, so a request ends exactly once; dropping an unfinished
/// choice finishes it as [`Outcome::Cancelled`].
///
/// ```
/// use std::time::Duration;
/// use peerlb::{ListOptions, Outcome, PeerList, Request};
/// let list = PeerList::new(ListOptions::default().shuffle(false)).unwrap();
/// list.update(["a:1"], Vec::<String>::new()).unwrap();
/// list.start().unwrap();
/// let choice = list.choose(&Request::new()).unwrap();
/// assert_eq!(choice.peer().as_str(), "a:1");
/// assert_eq!(choice.status().pending, 1);
/// choice.finish(Outcome::Ok, Some(Duration::from_millis(3)));
/// ```
pub struct Choice {
    peer: Option<Arc<Peer>>,
}

impl Choice {
    pub(crate) fn new(peer: Arc<Peer>) -> Choice {
        Choice { peer: Some(peer) }
    }

    fn peer_ref(&self) -> &Arc<Peer> {
        self.peer
            .as_ref()
            .expect("a live choice always holds its peer")
    }

    /// The chosen peer's id.
    pub fn peer(&self) -> &PeerId {
        self.peer_ref().id()
    }

    /// The chosen peer's current status (this request included in `pending`).
    pub fn status(&self) -> crate::PeerStatus {
        self.peer_ref().status()
    }

    /// End the request: pending goes down, and the outcome (and latency, if known) is
    /// recorded for the peer.
    pub fn finish(mut self, outcome: Outcome, latency: Option<Duration>) {
        self.end(outcome, latency);
    }

    /// Turns the choice into an opaque token for foreign code (the C ABI), keeping the
    /// request pending. Exactly one [`Choice::from_raw`] must follow.
    pub fn into_raw(mut self) -> *const () {
        let peer = self
            .peer
            .take()
            .expect("a live choice always holds its peer");
        Arc::into_raw(peer) as *const ()
    }

    /// Rebuilds a choice from [`Choice::into_raw`]'s token.
    ///
    /// # Safety
    /// `token` must come from `into_raw` and be passed here exactly once.
    pub unsafe fn from_raw(token: *const ()) -> Choice {
        // SAFETY: the caller guarantees the token came from Arc::into_raw of a Peer, once.
        Choice {
            peer: Some(unsafe { Arc::from_raw(token as *const Peer) }),
        }
    }

    fn end(&mut self, _outcome: Outcome, _latency: Option<Duration>) {
        if let Some(peer) = self.peer.take() {
            peer.end_request();
        }
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
