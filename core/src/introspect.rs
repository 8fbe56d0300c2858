//! Serializable snapshots of a list's state, for debugging pages, logs and tests.

use serde::{Deserialize, Serialize};

/// A peer list at one moment.
///
/// Serialized (e.g. by the C ABI's `peerlb_list_introspect`) as:
///
/// ```json
/// {"strategy":"round-robin","transport":"always-available","state":"running",
///  "summary":"Running (2/3 available)","available":2,"total":3,
///  "peers":[{"id":"a:1","status":"available","pending":0,"weight":1}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListIntrospection {
    /// The strategy's name.
    pub strategy: String,
    /// The transport's name.
    pub transport: String,
    /// `"running"` or `"idle"`.
    pub state: String,
    /// A one-line summary such as `"Running (2/3 available)"`.
    pub summary: String,
    /// How many peers are available.
    pub available: usize,
    /// How many peers the list has (retained or not).
    pub total: usize,
    /// Every peer, in the order they were added.
    pub peers: Vec<PeerIntrospection>,
}

/// One peer in a [`ListIntrospection`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerIntrospection {
    /// The peer id.
    pub id: String,
    /// `"uninitialized"` (in the list, not retained: the list is idle), or the connection
    /// status: `"unavailable"`, `"connecting"`, `"available"`.
    pub status: String,
    /// Requests in flight.
    pub pending: usize,
    /// The weight it was added with.
    pub weight: u32,
}

impl ListIntrospection {
    /// The introspection as a JSON string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("introspection always serializes")
    }
}
