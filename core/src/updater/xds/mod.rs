//! The xDS updater: endpoints of named clusters from an xDS control plane (cargo feature
//! `xds`).
//!
//! It speaks the aggregated discovery service (ADS, `envoy.service.discovery.v3.
//! AggregatedDiscoveryService/StreamAggregatedResources`) in its state-of-the-world form
//! over gRPC (HTTP/2 without TLS), and subscribes to the `ClusterLoadAssignment`s (EDS) of
//! the clusters it is given. One updater feeds one list from all its clusters together
//! (their union).
//!
//! # Mapping
//!
//! | xDS | peer |
//! |---|---|
//! | endpoint socket address + port | id `host:port` (`[v6]:port`) |
//! | locality `region`/`zone`/`sub_zone` | zone `region/zone/sub_zone`, trailing empty parts left out (`us-east-1/us-east-1a`); none when all are empty. A list's [`local_zone`](crate::ListOptions::local_zone) must be written the same way |
//! | locality `priority` | priority |
//! | endpoint `load_balancing_weight`, else the locality's, else 1 | weight |
//! | `health_status` `HEALTHY`, `UNKNOWN` | offered |
//! | `DEGRADED` | offered only when no endpoint of the clusters is healthy (as Envoy) |
//! | `UNHEALTHY`, `DRAINING`, `TIMEOUT` | left out (removed from the list) |
//!
//! A peer leaving the list (drained, unhealthy or gone) keeps its requests in flight and
//! its open sessions: the list's removal leaves pending choices valid, so they finish as
//! usual; it only stops offering the peer. An address in two clusters is one peer (as it
//! first appears, clusters in name order).
//!
//! # Protocol
//!
//! * The first request of each stream carries the node (id and cluster, default
//!   `peerlb` / `peerlb`, see [`XdsUpdater::node_id`]), the cluster names, the EDS type URL
//!   and the last version accepted (empty at first).
//! * Every response is ACKed (its `version_info` and `response_nonce`) after it was
//!   applied. A response that does not validate (see below) is NACKed: the request carries
//!   the previous version, the response's nonce and `error_detail` (gRPC code 3
//!   `INVALID_ARGUMENT` and the reason); nothing of it is applied, the last good set stays,
//!   and the reason is reported as a `source-failed` error until a good response comes.
//!   Rejected: a resource that is not a `ClusterLoadAssignment`, an endpoint without a
//!   socket address, a named port, port 0 or above 65535, a weight of 0, a zone over the
//!   list's limit, a cluster twice in one response.
//! * Responses are decoded, validated and applied on the runtime's blocking pool, one at
//!   a time (the next is read after the ACK), never on its async workers.
//! * Each response replaces the clusters it names (a control plane may send EDS per
//!   cluster); clusters it was not asked for are ignored. The **first** response of a
//!   stream is the server's full state: clusters it does not name are dropped, so after a
//!   reconnect the server's state replaces the set.
//!
//! # Failures
//!
//! When the control plane cannot be reached or the stream breaks, the last good set stays,
//! a `source-failed` error is reported (readable as [`Binding::last_error`]), and it
//! reconnects after a backoff: from 500 ms, doubling up to 30 s, each wait jittered by
//! ±20 % ([`XdsUpdater::backoff_initial`], [`XdsUpdater::backoff_max`]); a stream that
//! delivered a response starts the backoff over. On reconnecting it subscribes again and
//! the server's answer replaces the set.
//!
//! CDS (discovering the cluster names themselves) is not implemented: the clusters are
//! given.

mod backoff;
mod eds;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use super::{Binding, BoxFuture, Driver, EventCallback, Sink};
use crate::{Error, PeerList, Result};
use backoff::Backoff;
use eds::{Assignments, EDS_TYPE_URL};

/// The node id and cluster sent when none is configured.
const DEFAULT_NODE: &str = "peerlb";
/// Longest accepted server URI, cluster name or node field, in bytes.
const MAX_NAME_LEN: usize = 4096;

/// Follows clusters' endpoints on an xDS control plane (see the [module docs](self)).
///
/// ```no_run
/// use peerlb::{ListOptions, PeerList};
/// use peerlb::updater::XdsUpdater;
/// let list = PeerList::new(ListOptions::default()).unwrap();
/// let binding = XdsUpdater::new("http://127.0.0.1:18000", ["backend"])
///     .unwrap()
///     .node_id("client-1")
///     .unwrap()
///     .bind(&list);
/// binding.start().unwrap();
/// ```
#[derive(Clone)]
pub struct XdsUpdater {
    server: String,
    clusters: BTreeSet<String>,
    node_id: String,
    node_cluster: String,
    timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    on_event: Option<EventCallback>,
}

fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_NAME_LEN || value.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "xDS updater: {what} must be 1..={MAX_NAME_LEN} bytes without NUL, not {value:?}"
        )));
    }
    Ok(())
}

impl XdsUpdater {
    /// Subscribes to the endpoints of `clusters` on the ADS server at `server`
    /// (`http://host:port`, or `host:port`; no TLS). Errors with `invalid-argument` for a
    /// bad URI, an `https` one, no clusters, or an empty cluster name.
    pub fn new<I>(server: &str, clusters: I) -> Result<XdsUpdater>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        check_name("the server", server)?;
        let server = if server.contains("://") {
            server.to_owned()
        } else {
            format!("http://{server}")
        };
        if !server.starts_with("http://") {
            return Err(Error::InvalidArgument(format!(
                "xDS updater: server {server:?}: only http:// (plaintext gRPC) is supported"
            )));
        }
        Endpoint::from_shared(server.clone()).map_err(|e| {
            Error::InvalidArgument(format!("xDS updater: bad server URI {server:?}: {e}"))
        })?;
        let clusters: BTreeSet<String> = clusters.into_iter().map(Into::into).collect();
        if clusters.is_empty() {
            return Err(Error::InvalidArgument(
                "xDS updater needs at least one cluster name".into(),
            ));
        }
        for c in &clusters {
            check_name("a cluster name", c)?;
        }
        Ok(XdsUpdater {
            server,
            clusters,
            node_id: DEFAULT_NODE.into(),
            node_cluster: DEFAULT_NODE.into(),
            timeout: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            on_event: None,
        })
    }

    /// The node id sent to the control plane (default `peerlb`). Errors with
    /// `invalid-argument` when empty or over 4096 bytes.
    pub fn node_id(mut self, id: &str) -> Result<XdsUpdater> {
        check_name("the node id", id)?;
        self.node_id = id.to_owned();
        Ok(self)
    }

    /// The node's cluster sent to the control plane (default `peerlb`). Errors with
    /// `invalid-argument` when empty or over 4096 bytes.
    pub fn node_cluster(mut self, cluster: &str) -> Result<XdsUpdater> {
        check_name("the node cluster", cluster)?;
        self.node_cluster = cluster.to_owned();
        Ok(self)
    }

    /// How long connecting may take (default 2 s).
    pub fn timeout(mut self, d: Duration) -> XdsUpdater {
        self.timeout = d.max(Duration::from_millis(1));
        self
    }

    /// The first wait before reconnecting (default 500 ms); it doubles with each failure
    /// up to [`XdsUpdater::backoff_max`], each wait jittered by ±20 %.
    pub fn backoff_initial(mut self, d: Duration) -> XdsUpdater {
        self.backoff_initial = d.max(Duration::from_millis(1));
        self
    }

    /// The longest wait before reconnecting (default 30 s; never below the first wait).
    pub fn backoff_max(mut self, d: Duration) -> XdsUpdater {
        self.backoff_max = d.max(Duration::from_millis(1));
        self
    }

    /// Receives [`super::UpdaterEvent`]s (see the [module docs](super)).
    pub fn on_event(mut self, callback: EventCallback) -> XdsUpdater {
        self.on_event = Some(callback);
        self
    }

    /// Ties the clusters to `list`; [`Binding::start`] connects and follows them on the
    /// library runtime (it does not wait for the control plane).
    pub fn bind(&self, list: &PeerList) -> Binding {
        let clusters: Vec<&str> = self.clusters.iter().map(String::as_str).collect();
        Binding::new(
            Arc::new(XdsDriver(self.clone())),
            list.clone(),
            self.on_event.clone(),
            format!("xds:{}[{}]", self.server, clusters.join(",")),
        )
    }

    /// A subscription request: the node goes with the first one of a stream only.
    fn request(
        &self,
        first: bool,
        version: &str,
        nonce: &str,
        error: Option<String>,
    ) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: version.to_owned(),
            node: first.then(|| Node {
                id: self.node_id.clone(),
                cluster: self.node_cluster.clone(),
                user_agent_name: "peerlb".into(),
                ..Node::default()
            }),
            resource_names: self.clusters.iter().cloned().collect(),
            type_url: EDS_TYPE_URL.into(),
            response_nonce: nonce.to_owned(),
            error_detail: error.map(|message| Status {
                code: 3, // INVALID_ARGUMENT
                message,
                details: Vec::new(),
            }),
            ..DiscoveryRequest::default()
        }
    }

    /// One stream's life: subscribe, then apply and ACK (or NACK) each response until the
    /// stream breaks. Applies and reports run on the blocking pool ([`Sink::off_worker`]).
    async fn stream(
        &self,
        sink: &Arc<Sink>,
        state: &mut State,
        backoff: &mut Backoff,
    ) -> std::result::Result<(), String> {
        let channel = Endpoint::from_shared(self.server.clone())
            .map_err(|e| e.to_string())?
            .connect_timeout(self.timeout)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .connect()
            .await
            .map_err(|e| format!("xDS connect to {}: {e}", self.server))?;
        let mut client =
            AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(64 << 20);
        let (tx, rx) = tokio::sync::mpsc::channel::<DiscoveryRequest>(4);
        let closed = || format!("xDS stream to {}: request stream closed", self.server);
        tx.send(self.request(true, &state.version, "", None))
            .await
            .map_err(|_| closed())?;
        let mut responses = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .map_err(|e| format!("xDS stream to {}: {}", self.server, status_text(&e)))?
            .into_inner();
        let mut fresh = true;
        loop {
            let response: DiscoveryResponse = responses
                .message()
                .await
                .map_err(|e| format!("xDS stream to {}: {}", self.server, status_text(&e)))?
                .ok_or_else(|| format!("xDS stream to {}: ended by the server", self.server))?;
            backoff.reset();
            if response.type_url != EDS_TYPE_URL {
                // Not subscribed: nothing to apply; NACK so the server knows.
                let why = format!("type {:?} was not subscribed", response.type_url);
                let mut nack = self.request(false, "", &response.nonce, Some(why));
                nack.type_url = response.type_url.clone();
                tx.send(nack).await.map_err(|_| closed())?;
                continue;
            }
            // Decoding and validating a large response is CPU work: on the blocking pool,
            // like every apply, so the runtime's async workers stay free.
            let subscribed = self.clusters.clone();
            let (response, decoded) = crate::runtime::spawn_blocking(move || {
                let decoded = eds::decode(&response, &subscribed);
                (response, decoded)
            })
            .await
            .map_err(|e| format!("xDS: decoding a response from {} failed: {e}", self.server))?;
            match decoded {
                Ok(assignments) => {
                    if fresh {
                        state.clusters = assignments;
                        fresh = false;
                    } else {
                        state.clusters.extend(assignments);
                    }
                    state.version = response.version_info.clone();
                    let peers = eds::peers_of(&state.clusters);
                    sink.off_worker(move |s| s.apply(peers)).await;
                    tx.send(self.request(false, &state.version, &response.nonce, None))
                        .await
                        .map_err(|_| closed())?;
                }
                Err(why) => {
                    tx.send(self.request(
                        false,
                        &state.version,
                        &response.nonce,
                        Some(why.clone()),
                    ))
                    .await
                    .map_err(|_| closed())?;
                    let message = format!(
                        "xDS: rejected version {:?} (nonce {:?}) from {}: {why}",
                        response.version_info, response.nonce, self.server
                    );
                    sink.off_worker(move |s| s.fail(Error::SourceFailed(message)))
                        .await;
                }
            }
        }
    }
}

/// A gRPC status as text (code and message).
fn status_text(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {}", status.code(), status.message())
    }
}

/// What a binding keeps across streams.
#[derive(Default)]
struct State {
    /// The last version accepted (sent again after a reconnect).
    version: String,
    /// The last good assignments.
    clusters: Assignments,
}

struct XdsDriver(XdsUpdater);

impl Driver for XdsDriver {
    fn start(&self, sink: Arc<Sink>) -> Result<Option<BoxFuture<()>>> {
        let updater = self.0.clone();
        Ok(Some(Box::pin(async move {
            let mut state = State::default();
            let mut backoff = Backoff::new(
                updater.backoff_initial,
                updater.backoff_max.max(updater.backoff_initial),
            );
            loop {
                if let Err(message) = updater.stream(&sink, &mut state, &mut backoff).await {
                    sink.off_worker(move |s| s.fail(Error::SourceFailed(message)))
                        .await;
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        })))
    }
}
