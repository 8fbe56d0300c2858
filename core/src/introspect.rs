//! Serializable snapshots of a list's state, for debugging pages, logs and tests.

use serde::{Deserialize, Serialize};

/// A peer list at one moment.
///
/// Serialized (e.g. by the C ABI's `peerlb_list_introspect`) as:
///
/// ```json
/// {"strategy":"round-robin","transport":"always-available","state":"running",
///  "summary":"Running (2/3 available)","available":2,"total":3,"panic":false,
///  "ejected":0,"disabled":0,"chosen":10,"failures":1,"ejections":0,"sessions":0,
///  "name":"list-1","pending":0,"max_pending":null,"max_pending_per_peer":null,
///  "overloaded":0,"subset":null,
///  "priorities":[{"priority":0,"load":100,"healthy":2,"enabled":3,"panic":false}],
///  "peers":[{"id":"a:1","status":"available","pending":0,"weight":1,"zone":null,"priority":0,
///            "admin":"enabled",
///            "ejected":false,"ejected_for_ms":0,"ejections":0,"consecutive_failures":1,
///            "chosen":10,"failures":1,"sessions":0}]}
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
    /// How many peers the list has (retained or not; with subsetting, those of its
    /// subset).
    pub total: usize,
    /// Panic mode: too few peers are healthy, so ejections are ignored (see
    /// [`crate::ejection`]).
    #[serde(default)]
    pub panic: bool,
    /// How many peers are ejected now.
    #[serde(default)]
    pub ejected: usize,
    /// How many peers an admin disabled.
    #[serde(default)]
    pub disabled: usize,
    /// Requests started, summed over the peers (each counted since it was retained).
    #[serde(default)]
    pub chosen: u64,
    /// Requests that ended as `failure`, summed over the peers.
    #[serde(default)]
    pub failures: u64,
    /// Ejections so far, summed over the peers.
    #[serde(default)]
    pub ejections: u64,
    /// The list's name (its `list` label in metrics, its path on the admin endpoint).
    #[serde(default)]
    pub name: String,
    /// Requests in flight, summed over the peers.
    #[serde(default)]
    pub pending: usize,
    /// The `max_pending` circuit breaker, if set.
    #[serde(default)]
    pub max_pending: Option<usize>,
    /// The `max_pending_per_peer` circuit breaker, if set.
    #[serde(default)]
    pub max_pending_per_peer: Option<usize>,
    /// Chooses the circuit breakers refused (`overloaded`) so far.
    #[serde(default)]
    pub overloaded: u64,
    /// Open sessions of the list (see [`crate::session`]), including those bound to a
    /// peer that was removed and those bound to no peer after a failed failover.
    #[serde(default)]
    pub sessions: usize,
    /// Deterministic subsetting, when the list subsets (`null` in JSON when not).
    #[serde(default)]
    pub subset: Option<SubsetIntrospection>,
    /// The priority levels that have peers, highest (0) first, with the share of requests
    /// each gets now (see [`crate::list::routing`]).
    #[serde(default)]
    pub priorities: Vec<PriorityIntrospection>,
    /// Every peer, in the order they were added.
    pub peers: Vec<PeerIntrospection>,
}

/// A subsetting list's subset in a [`ListIntrospection`]
/// (see [`ListOptions::subset`](crate::ListOptions::subset)):
/// `{"size":4,"client":7,"offered":12}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsetIntrospection {
    /// The subset's size (`subset`).
    pub size: usize,
    /// This client's id (`subset_client`).
    pub client: u64,
    /// How many peers are offered (the list retains `min(size, offered)` of them).
    pub offered: usize,
}

/// One priority level in a [`ListIntrospection`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityIntrospection {
    /// The level (0 is the highest).
    pub priority: u32,
    /// Percent of requests it gets now (Envoy's priority load; the levels add up to 100).
    pub load: u32,
    /// Its peers the list would offer outside panic (available, enabled, not ejected).
    pub healthy: usize,
    /// Its retained peers that an admin did not disable.
    pub enabled: usize,
    /// Whether its panic floor is in force (its ejected peers are offered).
    pub panic: bool,
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
    /// Its zone (locality), if it was added with one.
    #[serde(default)]
    pub zone: Option<String>,
    /// Its priority level (0 is the highest).
    #[serde(default)]
    pub priority: u32,
    /// `"enabled"`, or `"disabled"` by an admin.
    #[serde(default = "enabled")]
    pub admin: String,
    /// Whether outlier detection has ejected it.
    #[serde(default)]
    pub ejected: bool,
    /// How much longer its ejection lasts, in milliseconds (0 when not ejected).
    #[serde(default)]
    pub ejected_for_ms: u64,
    /// How many times it has been ejected (its next ejection lasts longer).
    #[serde(default)]
    pub ejections: u32,
    /// Its current run of `failure` outcomes.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Requests started to it since it was retained.
    #[serde(default)]
    pub chosen: u64,
    /// Requests to it that ended as `failure` since it was retained.
    #[serde(default)]
    pub failures: u64,
    /// Open sessions bound to it (each also counts in `pending`).
    #[serde(default)]
    pub sessions: usize,
}

fn enabled() -> String {
    "enabled".to_owned()
}

impl ListIntrospection {
    /// The introspection as a JSON string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("introspection always serializes")
    }
}
