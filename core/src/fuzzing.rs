//! Entry points for the fuzzer (`fuzz/`; cargo-fuzz builds with `--cfg fuzzing`): the
//! internals that have no public API of their own. Compiled only in fuzzing builds; not
//! part of the library.

use std::collections::BTreeMap;

use crate::updater::Sink;
use crate::{PeerList, PeerSpec};

/// The peers the DNS updater takes from a DNS response (`message`, in wire format) when it
/// follows `record`; `None` when the bytes are not a DNS message.
#[cfg(feature = "dns")]
pub fn dns_answer_peers(
    record: crate::updater::DnsRecord,
    message: &[u8],
) -> Option<Vec<PeerSpec>> {
    let message = hickory_resolver::proto::op::Message::from_vec(message).ok()?;
    let answers = message.answers().iter().map(|r| r.data().clone()).collect();
    Some(crate::updater::dns::answer_peers(record, answers))
}

/// What every updater applies its source's sets through: the diff against the set it
/// applied last, and the list's `update`.
pub struct UpdaterSink(Sink);

impl UpdaterSink {
    /// A sink for `list` that has applied nothing yet.
    pub fn new(list: &PeerList) -> UpdaterSink {
        UpdaterSink(Sink::new(list.clone(), None, BTreeMap::new()))
    }

    /// Makes the list hold `desired`, as far as this updater is concerned.
    pub fn apply(&self, desired: Vec<PeerSpec>) {
        self.0.apply(desired);
    }

    /// The set it applied last (id → weight).
    pub fn applied(&self) -> BTreeMap<String, u32> {
        self.0
            .applied()
            .into_iter()
            .map(|(id, p)| (id, p.weight))
            .collect()
    }
}
