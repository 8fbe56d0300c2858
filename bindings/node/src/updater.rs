//! Updaters for Node: `StaticUpdater`, `FileUpdater`, `DnsUpdater`, `EtcdUpdater`,
//! `XdsUpdater` (the core's, with their options as napi-rs objects) and the `Binding` that
//! `bind(list)` returns. Options not given take the core's defaults.

use std::net::SocketAddr;
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, ClassInstance, Either, FromNapiValue, Null, This, Unknown};
use napi::{sys, Env, JsValue, Task};
use napi_derive::napi;
use peerlb::updater::{
    DnsRecord, DnsUpdater as CoreDns, FileUpdater as CoreFile, StaticUpdater as CoreStatic,
};

use crate::convert::{self, Given, PeerSpecs, Strings};
use crate::list::NativeList;
use crate::{guard, js};

/// The list of a `bind(list)` call.
fn list_arg(env: &Env, list: Unknown) -> napi::Result<peerlb::PeerList> {
    match unsafe { ClassInstance::<NativeList>::from_napi_value(env.raw(), list.raw()) } {
        Ok(l) => Ok(l.core().clone()),
        Err(_) => Err(js::type_error(
            env,
            &format!("bind(list): list must be a PeerList, got {}", unsafe {
                js::describe_arg(env.raw(), list.raw())
            }),
        )),
    }
}

fn duration(
    env: &Env,
    what: &str,
    ms: Option<Either<f64, Null>>,
) -> napi::Result<Option<std::time::Duration>> {
    ms.given()
        .map(convert::millis)
        .transpose()
        .map_err(|m| convert::invalid(env, what, m))
}

/// A fixed set of peers (`'id'` or `{id, weight}`), applied when the binding starts (which
/// fails with PEERLB_INVALID_ARGUMENT, applying nothing, when an id is bad or a weight 0).
#[napi]
pub struct StaticUpdater {
    inner: CoreStatic,
}

#[napi]
impl StaticUpdater {
    /// The set to apply (duplicates collapse; the last weight wins).
    #[napi(
        constructor,
        ts_args_type = "peers: ReadonlyArray<string | { id: string; weight?: number }>"
    )]
    pub fn new(env: Env, peers: Unknown) -> napi::Result<Self> {
        let peers: PeerSpecs =
            unsafe { convert::arg(env.raw(), peers.raw(), "new StaticUpdater(peers)")? };
        Ok(StaticUpdater {
            inner: CoreStatic::new(peers.0),
        })
    }

    /// Ties the set to `list`.
    #[napi(ts_args_type = "list: NativeList")]
    pub fn bind(&self, env: Env, list: Unknown) -> napi::Result<Binding> {
        Ok(Binding::new(self.inner.bind(&list_arg(&env, list)?)))
    }
}

/// Options of `new FileUpdater(path, options)`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct FileUpdaterOptions {
    /// How often the file is looked at (default 250 ms).
    pub poll_interval_ms: Option<Either<f64, Null>>,
    /// The largest file read, in bytes (default 16 MiB); a larger one is a source failure
    /// (the last good set stays).
    pub max_size: Option<Either<f64, Null>>,
}

/// One `host:port [weight] [zone=Z] [priority=P]` per line (`#` comments, blank lines
/// ignored), polled for changes.
#[napi]
pub struct FileUpdater {
    inner: CoreFile,
}

#[napi]
impl FileUpdater {
    /// Follows the file at `path`.
    #[napi(
        constructor,
        ts_args_type = "path: string, options?: FileUpdaterOptions"
    )]
    pub fn new(env: Env, path: Unknown, options: Option<Unknown>) -> napi::Result<Self> {
        let path: String =
            unsafe { convert::arg(env.raw(), path.raw(), "new FileUpdater(path): path")? };
        if path.is_empty() {
            return Err(convert::invalid(
                &env,
                "new FileUpdater(path): path",
                "must not be empty",
            ));
        }
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: FileUpdaterOptions =
            unsafe { convert::options(env.raw(), raw, "new FileUpdater(path, options)")? };
        let mut inner = CoreFile::new(path);
        if let Some(d) = duration(&env, "FileUpdater: pollIntervalMs", o.poll_interval_ms)? {
            inner = inner.poll_interval(d);
        }
        if let Some(n) = o.max_size.given() {
            let n = convert::whole(n, (1u64 << 53) - 1)
                .map_err(|m| convert::invalid(&env, "FileUpdater: maxSize", m))?;
            inner = inner.max_size(n);
        }
        Ok(FileUpdater { inner })
    }

    /// Ties the file to `list`.
    #[napi(ts_args_type = "list: NativeList")]
    pub fn bind(&self, env: Env, list: Unknown) -> napi::Result<Binding> {
        Ok(Binding::new(self.inner.bind(&list_arg(&env, list)?)))
    }
}

/// Options of `new DnsUpdater(name, options)`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct DnsUpdaterOptions {
    /// `'srv'` (default): port and weight from SRV records; `'a'` | `'aaaa'` | `'ip'`:
    /// addresses + `port`.
    #[napi(ts_type = "'srv' | 'a' | 'aaaa' | 'ip'")]
    pub record: Option<String>,
    /// The port for A/AAAA peers (1..65535).
    pub port: Option<f64>,
    /// `'ip:port'` of the nameserver to ask (default: the system's).
    pub nameserver: Option<Either<String, Null>>,
    /// Shortest wait between polls (default 1000 ms); the records' TTL is used when longer.
    pub min_interval_ms: Option<Either<f64, Null>>,
    /// Longest wait between polls (default 60000 ms).
    pub max_interval_ms: Option<Either<f64, Null>>,
    /// Per-query timeout (default 2000 ms).
    pub timeout_ms: Option<Either<f64, Null>>,
    /// Consecutive empty answers (NXDOMAIN / no records) before the list is emptied
    /// (default 3).
    pub empty_threshold: Option<f64>,
}

/// Follows a DNS name (polled): SRV records, or A/AAAA records + a port. SERVFAIL, timeouts
/// and refusals keep the last good set; an empty answer empties the list only after
/// `emptyThreshold` consecutive polls.
#[napi]
pub struct DnsUpdater {
    inner: CoreDns,
}

#[napi]
impl DnsUpdater {
    /// Follows `name`; see `DnsUpdaterOptions`.
    #[napi(
        constructor,
        ts_args_type = "name: string, options?: DnsUpdaterOptions"
    )]
    pub fn new(env: Env, name: Unknown, options: Option<Unknown>) -> napi::Result<Self> {
        let name: String =
            unsafe { convert::arg(env.raw(), name.raw(), "new DnsUpdater(name): name")? };
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: DnsUpdaterOptions =
            unsafe { convert::options(env.raw(), raw, "new DnsUpdater(name, options)")? };
        let port = o
            .port
            .map(|p| convert::whole(p, u16::MAX as u64).map(|p| p as u16))
            .transpose()
            .map_err(|m| convert::invalid(&env, "DnsUpdater: port", m))?;
        let mut inner = guard::call(&env, || {
            let record = DnsRecord::from_name(o.record.as_deref(), port)?;
            CoreDns::new(&name, record)
        })?;
        if let Some(ns) = o.nameserver.given() {
            let addr: SocketAddr = ns.parse().map_err(|_| {
                convert::invalid(
                    &env,
                    "DnsUpdater: nameserver",
                    format!("must be ip:port, not {ns:?}"),
                )
            })?;
            inner = inner.nameserver(addr);
        }
        if let Some(d) = duration(&env, "DnsUpdater: minIntervalMs", o.min_interval_ms)? {
            inner = inner.min_interval(d);
        }
        if let Some(d) = duration(&env, "DnsUpdater: maxIntervalMs", o.max_interval_ms)? {
            inner = inner.max_interval(d);
        }
        if let Some(d) = duration(&env, "DnsUpdater: timeoutMs", o.timeout_ms)? {
            inner = inner.timeout(d);
        }
        if let Some(n) = o.empty_threshold {
            let n = convert::whole(n, u32::MAX as u64)
                .map_err(|m| convert::invalid(&env, "DnsUpdater: emptyThreshold", m))?;
            inner = inner.empty_threshold(n as u32);
        }
        Ok(DnsUpdater { inner })
    }

    /// Ties the name to `list`.
    #[napi(ts_args_type = "list: NativeList")]
    pub fn bind(&self, env: Env, list: Unknown) -> napi::Result<Binding> {
        Ok(Binding::new(self.inner.bind(&list_arg(&env, list)?)))
    }
}

/// Options of `new EtcdUpdater(endpoints, prefix, options)`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct EtcdUpdaterOptions {
    /// Connect / read timeout (default 2000 ms).
    pub timeout_ms: Option<Either<f64, Null>>,
    /// Wait before reconnecting (default 500 ms).
    pub retry_interval_ms: Option<Either<f64, Null>>,
}

/// Watches an etcd key prefix (each key a peer: value `{"addr", "weight", "zone", "priority"}`, `host:port`, or
/// empty = key suffix); reconnects after etcd restarts, keeping the last good set. Needs an
/// addon built with the `etcd` cargo feature, else `bind` throws PEERLB_INVALID_ARGUMENT.
#[napi]
pub struct EtcdUpdater {
    #[cfg(feature = "etcd")]
    inner: peerlb::updater::EtcdUpdater,
}

#[napi]
impl EtcdUpdater {
    /// Watches `prefix` on the cluster at `endpoints` (`'http://host:port'` strings).
    #[napi(
        constructor,
        ts_args_type = "endpoints: ReadonlyArray<string>, prefix: string, options?: EtcdUpdaterOptions"
    )]
    pub fn new(
        env: Env,
        endpoints: Unknown,
        prefix: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<Self> {
        let raw = env.raw();
        let endpoints: Strings =
            unsafe { convert::arg(raw, endpoints.raw(), "new EtcdUpdater(endpoints)")? };
        let prefix: String = unsafe {
            convert::arg(
                raw,
                prefix.raw(),
                "new EtcdUpdater(endpoints, prefix): prefix",
            )?
        };
        let opts = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: EtcdUpdaterOptions =
            unsafe { convert::options(raw, opts, "new EtcdUpdater(endpoints, prefix, options)")? };
        let timeout = duration(&env, "EtcdUpdater: timeoutMs", o.timeout_ms)?;
        let retry = duration(&env, "EtcdUpdater: retryIntervalMs", o.retry_interval_ms)?;
        #[cfg(feature = "etcd")]
        {
            let mut inner = guard::call(&env, || {
                peerlb::updater::EtcdUpdater::new(endpoints.0, &prefix)
            })?;
            if let Some(d) = timeout {
                inner = inner.timeout(d);
            }
            if let Some(d) = retry {
                inner = inner.retry_interval(d);
            }
            Ok(EtcdUpdater { inner })
        }
        #[cfg(not(feature = "etcd"))]
        {
            let _ = (endpoints, prefix, timeout, retry);
            Ok(EtcdUpdater {})
        }
    }

    /// Ties the prefix to `list`.
    #[napi(ts_args_type = "list: NativeList")]
    pub fn bind(&self, env: Env, list: Unknown) -> napi::Result<Binding> {
        let list = list_arg(&env, list)?;
        #[cfg(feature = "etcd")]
        {
            Ok(Binding::new(self.inner.bind(&list)))
        }
        #[cfg(not(feature = "etcd"))]
        {
            let _ = list;
            Err(js::throw(
                &env,
                &peerlb::Error::InvalidArgument(
                    "this addon was built without etcd support (cargo feature `etcd`)".into(),
                ),
            ))
        }
    }
}

/// Options of `new XdsUpdater(server, clusters, options)`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct XdsUpdaterOptions {
    /// The node id sent to the control plane (default `'peerlb'`).
    pub node_id: Option<Either<String, Null>>,
    /// The node's cluster sent to the control plane (default `'peerlb'`).
    pub node_cluster: Option<Either<String, Null>>,
    /// How long connecting may take (default 2000 ms).
    pub timeout_ms: Option<Either<f64, Null>>,
    /// The first wait before reconnecting (default 500 ms); it doubles up to
    /// `backoffMaxMs`, each wait jittered by ±20 %.
    pub backoff_initial_ms: Option<Either<f64, Null>>,
    /// The longest wait before reconnecting (default 30000 ms).
    pub backoff_max_ms: Option<Either<f64, Null>>,
}

/// A string option where `null` means "not given".
fn given_string(v: Option<Either<String, Null>>) -> Option<String> {
    match v {
        Some(Either::A(s)) => Some(s),
        _ => None,
    }
}

/// Follows the endpoints of xDS clusters (ADS v3, state of the world, EDS): locality
/// `region/zone/sub_zone` → zone, priority → priority, endpoint (else locality, else 1)
/// weight → weight; HEALTHY/UNKNOWN offered, DEGRADED only when none is healthy. Invalid
/// responses are NACKed and the last good set stays, as while the server is away. Needs an
/// addon built with the `xds` cargo feature, else `bind` throws PEERLB_INVALID_ARGUMENT.
#[napi]
pub struct XdsUpdater {
    #[cfg(feature = "xds")]
    inner: peerlb::updater::XdsUpdater,
}

#[napi]
impl XdsUpdater {
    /// Subscribes to `clusters` on the ADS server `server` (`'http://host:port'` or
    /// `'host:port'`, no TLS).
    #[napi(
        constructor,
        ts_args_type = "server: string, clusters: ReadonlyArray<string>, options?: XdsUpdaterOptions"
    )]
    pub fn new(
        env: Env,
        server: Unknown,
        clusters: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<Self> {
        let raw = env.raw();
        let server: String =
            unsafe { convert::arg(raw, server.raw(), "new XdsUpdater(server): server")? };
        let clusters: Strings = unsafe {
            convert::arg(
                raw,
                clusters.raw(),
                "new XdsUpdater(server, clusters): clusters",
            )?
        };
        let opts = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: XdsUpdaterOptions =
            unsafe { convert::options(raw, opts, "new XdsUpdater(server, clusters, options)")? };
        let timeout = duration(&env, "XdsUpdater: timeoutMs", o.timeout_ms)?;
        let initial = duration(&env, "XdsUpdater: backoffInitialMs", o.backoff_initial_ms)?;
        let max = duration(&env, "XdsUpdater: backoffMaxMs", o.backoff_max_ms)?;
        let node_id = given_string(o.node_id);
        let node_cluster = given_string(o.node_cluster);
        #[cfg(feature = "xds")]
        {
            let inner = guard::call(&env, || {
                let mut u = peerlb::updater::XdsUpdater::new(&server, clusters.0)?;
                if let Some(id) = &node_id {
                    u = u.node_id(id)?;
                }
                if let Some(c) = &node_cluster {
                    u = u.node_cluster(c)?;
                }
                if let Some(d) = timeout {
                    u = u.timeout(d);
                }
                if let Some(d) = initial {
                    u = u.backoff_initial(d);
                }
                if let Some(d) = max {
                    u = u.backoff_max(d);
                }
                Ok(u)
            })?;
            Ok(XdsUpdater { inner })
        }
        #[cfg(not(feature = "xds"))]
        {
            let _ = (
                server,
                clusters,
                timeout,
                initial,
                max,
                node_id,
                node_cluster,
            );
            Ok(XdsUpdater {})
        }
    }

    /// Ties the clusters to `list`.
    #[napi(ts_args_type = "list: NativeList")]
    pub fn bind(&self, env: Env, list: Unknown) -> napi::Result<Binding> {
        let list = list_arg(&env, list)?;
        #[cfg(feature = "xds")]
        {
            Ok(Binding::new(self.inner.bind(&list)))
        }
        #[cfg(not(feature = "xds"))]
        {
            let _ = list;
            Err(js::throw(
                &env,
                &peerlb::Error::InvalidArgument(
                    "this addon was built without xDS support (cargo feature `xds`)".into(),
                ),
            ))
        }
    }
}

/// A peer an updater applied.
#[napi(object)]
pub struct AppliedPeer {
    /// The peer id.
    pub id: String,
    /// Its weight.
    pub weight: u32,
}

/// Counters of a binding's current (or last) run.
#[napi(object)]
pub struct BindingStats {
    /// Reads of the source that succeeded.
    pub good_reads: f64,
    /// Reads that changed the list.
    pub changes: f64,
    /// Reads that failed (the last good set stayed).
    pub failures: f64,
}

/// An updater bound to a list (`updater.bind(list)`): `start()` follows the source,
/// `stop()` stops following it (the peers stay). A failing source keeps the last good set;
/// see `lastError`. `using b = updater.bind(list).start()` stops it at scope exit.
#[napi]
pub struct Binding {
    inner: Arc<peerlb::updater::Binding>,
}

impl Binding {
    fn new(inner: peerlb::updater::Binding) -> Binding {
        Binding {
            inner: Arc::new(inner),
        }
    }
}

/// `Binding.startAsync`'s work.
pub struct StartBinding(Arc<peerlb::updater::Binding>);

impl Task for StartBinding {
    type Output = peerlb::Result<()>;
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let b = &self.0;
        Ok(guard::caught(|| b.start()))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<()> {
        output.map_err(|e| {
            let value = unsafe { js::error_value(env.raw(), &e) };
            napi::Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
        })
    }
}

#[napi]
impl Binding {
    /// Starts following the source; static and file updaters apply their set before this
    /// returns (for a very large set prefer `startAsync`). Returns `this`
    /// (PEERLB_ALREADY_STARTED when started).
    #[napi(ts_return_type = "this")]
    pub fn start<'a>(&self, env: Env, this: This<'a>) -> napi::Result<This<'a>> {
        guard::call(&env, || self.inner.start())?;
        Ok(this)
    }

    /// `start` on a library thread.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn start_async(&self) -> AsyncTask<StartBinding> {
        AsyncTask::new(StartBinding(self.inner.clone()))
    }

    /// Stops following the source (PEERLB_NOT_STARTED when not started).
    #[napi]
    pub fn stop(&self, env: Env) -> napi::Result<()> {
        guard::call(&env, || self.inner.stop())
    }

    /// Whether it is started.
    #[napi(getter)]
    pub fn running(&self, env: Env) -> napi::Result<bool> {
        guard::call(&env, || Ok(self.inner.is_running()))
    }

    /// What it follows, e.g. `'file:/etc/peers'`.
    #[napi(getter)]
    pub fn source(&self) -> String {
        self.inner.describe().to_owned()
    }

    /// The set last applied, sorted by id.
    #[napi]
    pub fn peers(&self, env: Env) -> napi::Result<Vec<AppliedPeer>> {
        guard::call(&env, || {
            Ok(self
                .inner
                .peers()
                .into_iter()
                .map(|p| AppliedPeer {
                    id: p.id,
                    weight: p.weight,
                })
                .collect())
        })
    }

    /// The source's current failure (an `Error` with code PEERLB_SOURCE_FAILED), or null;
    /// the last good set is kept.
    #[napi(getter, ts_return_type = "(Error & { code: PeerlbErrorCode }) | null")]
    pub fn last_error(&self, env: Env) -> napi::Result<sys::napi_value> {
        Ok(match guard::call(&env, || Ok(self.inner.last_error()))? {
            Some(e) => unsafe { js::error_value(env.raw(), &e) },
            None => {
                let mut null = std::ptr::null_mut();
                unsafe { sys::napi_get_null(env.raw(), &mut null) };
                null
            }
        })
    }

    /// Counters of the current run.
    #[napi]
    pub fn stats(&self, env: Env) -> napi::Result<BindingStats> {
        let s = guard::call(&env, || Ok(self.inner.stats()))?;
        Ok(BindingStats {
            good_reads: s.good_reads as f64,
            changes: s.changes as f64,
            failures: s.failures as f64,
        })
    }
}
