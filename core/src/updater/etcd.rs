//! The etcd updater: watch a key prefix (cargo feature `etcd`).
//!
//! Every key under the prefix is one peer:
//!
//! * value `{"addr": "host:port", "weight": 3, "zone": "us-east-1a", "priority": 0}`
//!   (JSON; `addr` may be omitted, then the key suffix is the address; `weight` defaults
//!   to 1, `zone` to none and `priority` to 0, see [`crate::list::routing`]),
//! * or value `host:port` (plain text),
//! * or an empty value: the key suffix is `host:port` (`/services/api/10.0.0.1:80`).
//!
//! On start it connects, reads the whole prefix (`get --prefix`), applies it, and watches
//! from the revision that read returned, applying each batch of events. When the
//! connection breaks (etcd restarted, network) it keeps the last good set, reports a
//! `source-failed` error, and retries every [`EtcdUpdater::retry_interval`]; on reconnect
//! it reads the prefix again and diffs against what it last applied, so nothing is
//! applied twice and nothing missed while disconnected is lost. A key whose value cannot
//! be understood is left out and reported (the other keys still apply).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, GetOptions, KeyValue, WatchOptions};

use super::{Binding, BoxFuture, Driver, EventCallback, Sink};
use crate::updater::file::check_host_port;
use crate::{Error, PeerList, PeerSpec, Result};

/// Follows a key prefix in etcd (see the [module docs](self)).
///
/// ```no_run
/// use peerlb::{ListOptions, PeerList};
/// use peerlb::updater::EtcdUpdater;
/// let list = PeerList::new(ListOptions::default()).unwrap();
/// let binding = EtcdUpdater::new(["http://127.0.0.1:2379"], "/services/api/").unwrap().bind(&list);
/// binding.start().unwrap();
/// ```
#[derive(Clone)]
pub struct EtcdUpdater {
    endpoints: Vec<String>,
    prefix: String,
    timeout: Duration,
    retry: Duration,
    on_event: Option<EventCallback>,
}

impl EtcdUpdater {
    /// Watches `prefix` on the etcd cluster at `endpoints` (`http://host:port`). Errors
    /// with `invalid-argument` for no endpoints or an empty prefix.
    pub fn new<I>(endpoints: I, prefix: &str) -> Result<EtcdUpdater>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let endpoints: Vec<String> = endpoints.into_iter().map(Into::into).collect();
        if endpoints.is_empty() || endpoints.iter().any(|e| e.is_empty()) {
            return Err(Error::InvalidArgument(
                "etcd updater needs at least one endpoint (http://host:port)".into(),
            ));
        }
        if prefix.is_empty() {
            return Err(Error::InvalidArgument(
                "etcd updater needs a non-empty key prefix".into(),
            ));
        }
        Ok(EtcdUpdater {
            endpoints,
            prefix: prefix.to_owned(),
            timeout: Duration::from_secs(2),
            retry: Duration::from_millis(500),
            on_event: None,
        })
    }

    /// How long connecting or one read may take (default 2 s).
    pub fn timeout(mut self, d: Duration) -> EtcdUpdater {
        self.timeout = d.max(Duration::from_millis(1));
        self
    }

    /// The wait before reconnecting after a failure (default 500 ms).
    pub fn retry_interval(mut self, d: Duration) -> EtcdUpdater {
        self.retry = d.max(Duration::from_millis(1));
        self
    }

    /// Receives [`super::UpdaterEvent`]s (see the [module docs](super)).
    pub fn on_event(mut self, callback: EventCallback) -> EtcdUpdater {
        self.on_event = Some(callback);
        self
    }

    /// Ties the prefix to `list`; [`Binding::start`] connects and watches on the library
    /// runtime (it does not wait for etcd).
    pub fn bind(&self, list: &PeerList) -> Binding {
        Binding::new(
            Arc::new(EtcdDriver(self.clone())),
            list.clone(),
            self.on_event.clone(),
            format!("etcd:{}{}", self.endpoints.join(","), self.prefix),
        )
    }

    /// The peer a key stands for.
    fn peer_of(&self, kv: &KeyValue) -> std::result::Result<(String, PeerSpec), String> {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let suffix = key.strip_prefix(&self.prefix).unwrap_or(&key).to_owned();
        let value = std::str::from_utf8(kv.value())
            .map_err(|_| format!("etcd key {key:?}: value is not UTF-8"))?
            .trim();
        let (id, spec) = if value.starts_with('{') {
            let json: serde_json::Value = serde_json::from_str(value)
                .map_err(|e| format!("etcd key {key:?}: bad JSON value: {e}"))?;
            let id = match json.get("addr").or_else(|| json.get("id")) {
                None => suffix.clone(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(format!(
                        "etcd key {key:?}: addr must be a string, not {other}"
                    ))
                }
            };
            let weight = match json.get("weight") {
                None => 1,
                Some(w) => match w.as_u64().and_then(|w| u32::try_from(w).ok()) {
                    Some(w) if w >= 1 => w,
                    _ => return Err(format!("etcd key {key:?}: bad weight {w} (want >= 1)")),
                },
            };
            let mut spec = PeerSpec::weighted(id.clone(), weight);
            match json.get("zone") {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(z)) => {
                    crate::list::routing::validate_zone(z)
                        .map_err(|e| format!("etcd key {key:?}: bad zone: {e}"))?;
                    spec = spec.with_zone(z.as_str());
                }
                Some(other) => {
                    return Err(format!(
                        "etcd key {key:?}: zone must be a string, not {other}"
                    ))
                }
            }
            match json.get("priority") {
                None => {}
                Some(p) => match p.as_u64().and_then(|p| u32::try_from(p).ok()) {
                    Some(p) => spec.priority = p,
                    None => {
                        return Err(format!(
                            "etcd key {key:?}: bad priority {p} (want an integer >= 0)"
                        ))
                    }
                },
            }
            (id, spec)
        } else if value.is_empty() {
            (suffix.clone(), PeerSpec::new(suffix.clone()))
        } else {
            (value.to_owned(), PeerSpec::new(value))
        };
        check_host_port(&id).map_err(|why| format!("etcd key {key:?}: bad peer {id:?}: {why}"))?;
        Ok((key, spec))
    }

    /// One connection's life: read, apply, watch until it breaks. Every apply and report
    /// runs on the blocking pool ([`Sink::off_worker`]), waited for before the next read.
    async fn session(&self, sink: &Arc<Sink>) -> std::result::Result<(), String> {
        let options = ConnectOptions::new()
            .with_connect_timeout(self.timeout)
            .with_keep_alive(Duration::from_secs(1), self.timeout)
            .with_keep_alive_while_idle(true);
        let timed = |what: &'static str| {
            let t = self.timeout;
            move || format!("etcd {what}: no answer within {t:?}")
        };
        let mut client = tokio::time::timeout(
            self.timeout,
            Client::connect(self.endpoints.clone(), Some(options)),
        )
        .await
        .map_err(|_| timed("connect")())?
        .map_err(|e| format!("etcd connect to {}: {e}", self.endpoints.join(",")))?;
        let got = tokio::time::timeout(
            self.timeout,
            client.get(self.prefix.clone(), Some(GetOptions::new().with_prefix())),
        )
        .await
        .map_err(|_| timed("get")())?
        .map_err(|e| format!("etcd get {:?}: {e}", self.prefix))?;
        let revision = got.header().map(|h| h.revision()).unwrap_or(0);
        let mut state: BTreeMap<String, PeerSpec> = BTreeMap::new();
        let mut bad = Vec::new();
        for kv in got.kvs() {
            match self.peer_of(kv) {
                Ok((key, peer)) => {
                    state.insert(key, peer);
                }
                Err(e) => bad.push(e),
            }
        }
        apply(sink, &state, bad).await;
        let mut stream = tokio::time::timeout(
            self.timeout,
            client.watch(
                self.prefix.clone(),
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(revision + 1),
                ),
            ),
        )
        .await
        .map_err(|_| timed("watch")())?
        .map_err(|e| format!("etcd watch {:?}: {e}", self.prefix))?;
        loop {
            let message = stream
                .message()
                .await
                .map_err(|e| format!("etcd watch {:?}: {e}", self.prefix))?;
            let Some(resp) = message else {
                return Err(format!("etcd watch {:?}: stream ended", self.prefix));
            };
            if resp.canceled() {
                return Err(format!(
                    "etcd watch {:?} canceled: {} (compacted at {})",
                    self.prefix,
                    resp.cancel_reason(),
                    resp.compact_revision()
                ));
            }
            if resp.events().is_empty() {
                continue;
            }
            let mut bad = Vec::new();
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                match event.event_type() {
                    EventType::Delete => {
                        state.remove(&key);
                    }
                    EventType::Put => match self.peer_of(kv) {
                        Ok((key, peer)) => {
                            state.insert(key, peer);
                        }
                        Err(e) => {
                            state.remove(&key);
                            bad.push(e);
                        }
                    },
                }
            }
            apply(sink, &state, bad).await;
        }
    }
}

/// Applies the prefix's peers, then reports the keys left out, on the blocking pool.
async fn apply(sink: &Arc<Sink>, state: &BTreeMap<String, PeerSpec>, bad: Vec<String>) {
    let peers: Vec<PeerSpec> = state.values().cloned().collect();
    sink.off_worker(move |s| {
        s.apply(peers);
        for e in bad {
            s.fail(Error::SourceFailed(e));
        }
    })
    .await;
}

struct EtcdDriver(EtcdUpdater);

impl Driver for EtcdDriver {
    fn start(&self, sink: Arc<Sink>) -> Result<Option<BoxFuture<()>>> {
        let updater = self.0.clone();
        Ok(Some(Box::pin(async move {
            loop {
                if let Err(message) = updater.session(&sink).await {
                    sink.off_worker(move |s| s.fail(Error::SourceFailed(message)))
                        .await;
                }
                tokio::time::sleep(updater.retry).await;
            }
        })))
    }
}
