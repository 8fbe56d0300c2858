//! Updaters for Node: `NativeBinding` is the lifecycle `updater.bind(list)` returns in
//! `index.js` (`StaticUpdater`, `FileUpdater`, `DnsUpdater`). Options arrive as positional
//! primitives; `index.js` checks them and builds the JS-facing objects.

use std::net::SocketAddr;
use std::time::Duration;

use napi::Env;
use napi_derive::napi;
use peerlb::updater::{Binding, DnsRecord, DnsUpdater, FileUpdater, StaticUpdater};

use crate::transport::EnvScope;
use crate::{js, NativeList};

fn ms(v: f64) -> Option<Duration> {
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v.min(1e12) / 1000.0))
}

/// An updater bound to a list (internal; use the updaters from `index.js`).
#[napi]
pub struct NativeBinding {
    inner: Binding,
}

#[napi]
impl NativeBinding {
    /// A static set: ids with weights (missing weights are 1).
    #[napi(factory)]
    pub fn fixed(list: &NativeList, ids: Vec<String>, weights: Vec<u32>) -> NativeBinding {
        let peers: Vec<peerlb::PeerSpec> = ids
            .into_iter()
            .zip(weights.into_iter().chain(std::iter::repeat(1)))
            .map(|(id, w)| peerlb::PeerSpec::weighted(id, w))
            .collect();
        NativeBinding {
            inner: StaticUpdater::new(peers).bind(&list.entry.list),
        }
    }

    /// A file of `host:port [weight]` lines, polled every `pollMs` (negative = default).
    #[napi(factory)]
    pub fn file(list: &NativeList, path: String, poll_ms: f64) -> NativeBinding {
        let mut u = FileUpdater::new(path);
        if let Some(d) = ms(poll_ms) {
            u = u.poll_interval(d);
        }
        NativeBinding {
            inner: u.bind(&list.entry.list),
        }
    }

    /// A DNS name: record 'srv', 'a', 'aaaa' or 'ip' (port used by the last three);
    /// nameserver '' = the system's; negative durations = defaults.
    #[napi(factory)]
    #[allow(clippy::too_many_arguments)]
    pub fn dns(
        env: Env,
        list: &NativeList,
        name: String,
        record: String,
        port: u32,
        nameserver: String,
        min_interval_ms: f64,
        max_interval_ms: f64,
        timeout_ms: f64,
        empty_threshold: u32,
    ) -> napi::Result<NativeBinding> {
        let bad = |m: String| js::throw(&env, &peerlb::Error::InvalidArgument(m));
        let port16 = u16::try_from(port).map_err(|_| bad(format!("port {port} is not 1..65535")));
        let record = match record.as_str() {
            "srv" => DnsRecord::Srv,
            "a" => DnsRecord::A { port: port16? },
            "aaaa" => DnsRecord::Aaaa { port: port16? },
            "ip" => DnsRecord::Ip { port: port16? },
            other => {
                return Err(bad(format!(
                    "record must be 'srv', 'a', 'aaaa' or 'ip', not {other:?}"
                )))
            }
        };
        let mut u = DnsUpdater::new(&name, record)
            .map_err(|e| js::throw(&env, &e))?
            .empty_threshold(empty_threshold);
        if !nameserver.is_empty() {
            let addr: SocketAddr = nameserver
                .parse()
                .map_err(|_| bad(format!("nameserver must be ip:port, not {nameserver:?}")))?;
            u = u.nameserver(addr);
        }
        if let Some(d) = ms(min_interval_ms) {
            u = u.min_interval(d);
        }
        if let Some(d) = ms(max_interval_ms) {
            u = u.max_interval(d);
        }
        if let Some(d) = ms(timeout_ms) {
            u = u.timeout(d);
        }
        Ok(NativeBinding {
            inner: u.bind(&list.entry.list),
        })
    }

    /// An etcd key prefix (`endpoints`: `http://host:port` strings); negative durations =
    /// defaults. Throws PEERLB_INVALID_ARGUMENT in an addon built without the `etcd` feature.
    #[napi(factory)]
    pub fn etcd(
        env: Env,
        list: &NativeList,
        endpoints: Vec<String>,
        prefix: String,
        timeout_ms: f64,
        retry_interval_ms: f64,
    ) -> napi::Result<NativeBinding> {
        #[cfg(feature = "etcd")]
        {
            let mut u = peerlb::updater::EtcdUpdater::new(endpoints, &prefix)
                .map_err(|e| js::throw(&env, &e))?;
            if let Some(d) = ms(timeout_ms) {
                u = u.timeout(d);
            }
            if let Some(d) = ms(retry_interval_ms) {
                u = u.retry_interval(d);
            }
            Ok(NativeBinding {
                inner: u.bind(&list.entry.list),
            })
        }
        #[cfg(not(feature = "etcd"))]
        {
            let _ = (list, endpoints, prefix, timeout_ms, retry_interval_ms);
            Err(js::throw(
                &env,
                &peerlb::Error::InvalidArgument(
                    "this addon was built without etcd support (cargo feature `etcd`)".into(),
                ),
            ))
        }
    }

    /// Starts following the source.
    #[napi]
    pub fn start(&self, env: Env) -> napi::Result<()> {
        // static and file apply right here: a JS transport is called directly on this thread
        let _scope = EnvScope::enter(env.raw());
        self.inner.start().map_err(|e| js::throw(&env, &e))
    }

    /// Stops following the source (the peers stay).
    #[napi]
    pub fn stop(&self, env: Env) -> napi::Result<()> {
        self.inner.stop().map_err(|e| js::throw(&env, &e))
    }

    /// Whether it is started.
    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.inner.is_running()
    }

    /// What it follows, e.g. `file:/etc/peers`.
    #[napi(getter)]
    pub fn source(&self) -> String {
        self.inner.describe().to_owned()
    }

    /// The ids last applied, sorted.
    #[napi]
    pub fn peer_ids(&self) -> Vec<String> {
        self.inner.peers().into_iter().map(|p| p.id).collect()
    }

    /// The weights of `peerIds()`, in the same order.
    #[napi]
    pub fn peer_weights(&self) -> Vec<u32> {
        self.inner.peers().into_iter().map(|p| p.weight).collect()
    }

    /// `[code, message]` of the source's current failure, or null.
    #[napi]
    pub fn last_error(&self) -> Option<Vec<String>> {
        self.inner
            .last_error()
            .map(|e| vec![js::node_code(e.code()), e.to_string()])
    }

    /// `[goodReads, changes, failures]`.
    #[napi]
    pub fn stats(&self) -> Vec<f64> {
        let s = self.inner.stats();
        vec![s.good_reads as f64, s.changes as f64, s.failures as f64]
    }
}
