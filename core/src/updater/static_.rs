//! The static updater: a fixed set of peers (with weights), applied on start.

use std::sync::Arc;

use super::{Binding, BoxFuture, Driver, EventCallback, Sink};
use crate::{Error, PeerId, PeerList, PeerSpec, Result};

/// A fixed set of peers, applied to the list when the binding starts.
///
/// ```
/// use peerlb::{ListOptions, PeerList, PeerSpec};
/// use peerlb::updater::StaticUpdater;
/// let list = PeerList::new(ListOptions::default()).unwrap();
/// let binding = StaticUpdater::new(["a:1", "b:2"]).bind(&list);
/// binding.start().unwrap();
/// assert_eq!(list.len(), 2);
/// ```
#[derive(Clone)]
pub struct StaticUpdater {
    peers: Vec<PeerSpec>,
    on_event: Option<EventCallback>,
}

impl StaticUpdater {
    /// The set to apply (duplicates collapse; the last weight wins).
    pub fn new<I>(peers: I) -> StaticUpdater
    where
        I: IntoIterator,
        I::Item: Into<PeerSpec>,
    {
        StaticUpdater {
            peers: peers.into_iter().map(Into::into).collect(),
            on_event: None,
        }
    }

    /// Receives [`super::UpdaterEvent`]s (see the [module docs](super)).
    pub fn on_event(mut self, callback: EventCallback) -> StaticUpdater {
        self.on_event = Some(callback);
        self
    }

    /// Ties the set to `list`; nothing happens until [`Binding::start`], which fails with
    /// `invalid-argument` (and applies nothing) when an id is invalid or a weight is 0.
    pub fn bind(&self, list: &PeerList) -> Binding {
        Binding::new(
            Arc::new(StaticDriver(self.peers.clone())),
            list.clone(),
            self.on_event.clone(),
            format!("static:{} peers", self.peers.len()),
        )
    }
}

struct StaticDriver(Vec<PeerSpec>);

impl Driver for StaticDriver {
    fn start(&self, sink: Arc<Sink>) -> Result<Option<BoxFuture<()>>> {
        for peer in &self.0 {
            PeerId::new(&peer.id)?;
            if peer.weight == 0 {
                return Err(Error::InvalidArgument(format!(
                    "static peer {:?} has weight 0 (want >= 1)",
                    peer.id
                )));
            }
        }
        sink.apply(self.0.clone());
        Ok(None)
    }
}
