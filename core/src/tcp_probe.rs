//! The built-in `tcp-probe` transport and transport spec strings.
//!
//! [`TcpProbe`] connects to every retained peer (`host:port`, names resolved, IPv6 as
//! `[::1]:port`) on an interval, with a timeout, on the library runtime
//! ([`crate::runtime::handle`]). A retained peer is `connecting` until its first probe
//! ends; the first result decides at once (`available` or `unavailable`), after that it
//! takes `unhealthy_threshold` failed probes in a row to become `unavailable` and
//! `healthy_threshold` good ones in a row to become `available` again. Releasing a peer
//! stops its probe task; dropping the transport stops them all.
//!
//! Defaults (in the spirit of Envoy's active TCP health checks, a little quicker):
//!
//! | option | key | default |
//! |---|---|---|
//! | interval between probes | `interval_ms` | 1000 |
//! | connect timeout | `timeout_ms` | 500 |
//! | failures in a row to mark unavailable | `unhealthy_threshold` | 1 |
//! | successes in a row to mark available | `healthy_threshold` | 1 |
//!
//! With the defaults a peer that stops accepting is `unavailable` within one interval plus
//! one timeout (1.5 s); in general within `unhealthy_threshold` intervals plus a timeout.
//!
//! Probes never block the library runtime's async workers: names are resolved on its
//! blocking pool, at most one lookup per name at a time however many probes wait for it
//! (a resolver that hangs costs one thread, not one per probe), and a status change is
//! reported from the blocking pool (the list then runs its strategy and delivers events).
//!
//! Transport spec strings name a built-in transport with options, in the same syntax as
//! strategy names (`name?key=value&key=value`): `"always-available"`, `"tcp-probe"`,
//! `"tcp-probe?interval_ms=200&timeout_ms=100"`. Every surface (C, Python, Node) accepts
//! them and parses them here ([`TcpProbeOptions`] implements [`SpecOptions`]):
//! `interval_ms` and `timeout_ms` are whole milliseconds in 1..=86400000, the thresholds
//! integers in 1..=1000.
//!
//! ```
//! use std::time::Duration;
//! use peerlb::tcp_probe::{transport_from_spec, TcpProbeOptions};
//! let o: TcpProbeOptions = "tcp-probe?interval_ms=200&timeout_ms=100".parse().unwrap();
//! assert_eq!(o.interval, Duration::from_millis(200));
//! assert_eq!(o.to_string(), "tcp-probe?interval_ms=200&timeout_ms=100");
//! assert_eq!(transport_from_spec("tcp-probe").unwrap().name(), "tcp-probe");
//! assert_eq!(transport_from_spec("always-available").unwrap().name(), "always-available");
//! assert!(transport_from_spec("udp-probe").is_err());
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::peer::PeerId;
use crate::probe::{ProbeResult, ProbeSchedule, ProbeTransport, Prober, SCHEDULE_KEYS};
use crate::spec::{unknown_key, SpecOptions};
use crate::transport::{AlwaysAvailable, Subscriber, Transport};

/// The longest interval or timeout a spec may ask for (one day).
pub const MAX_PROBE_DURATION: Duration = Duration::from_secs(86_400);

/// Options of the [`TcpProbe`] transport (see the [module docs](self) for defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpProbeOptions {
    /// Time between the start of one probe and the start of the next (after the first).
    pub interval: Duration,
    /// How long one connect attempt (resolution included) may take before it counts as failed.
    pub timeout: Duration,
    /// Consecutive successful probes that make an unavailable peer available.
    pub healthy_threshold: u32,
    /// Consecutive failed probes that make an available peer unavailable.
    pub unhealthy_threshold: u32,
}

impl Default for TcpProbeOptions {
    fn default() -> Self {
        TcpProbeOptions {
            interval: Duration::from_millis(1000),
            timeout: Duration::from_millis(500),
            healthy_threshold: 1,
            unhealthy_threshold: 1,
        }
    }
}

/// The largest `healthy_threshold` / `unhealthy_threshold` a spec may ask for.
pub const MAX_THRESHOLD: u32 = 1000;

impl SpecOptions for TcpProbeOptions {
    const KIND: &'static str = "transport";
    const NAME: &'static str = "tcp-probe";

    /// `interval_ms`, `timeout_ms` (1..=86400000), `healthy_threshold`,
    /// `unhealthy_threshold` (1..=1000): the probe schedule's keys.
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut schedule = self.schedule();
        match schedule.set(key, value) {
            Some(set) => set?,
            None => return Err(unknown_key(Self::NAME, key, &SCHEDULE_KEYS)),
        }
        *self = TcpProbeOptions::from(schedule);
        Ok(())
    }

    fn changed(&self) -> Vec<(&'static str, String)> {
        self.schedule().changed()
    }
}

impl TcpProbeOptions {
    /// The probe schedule these options describe.
    fn schedule(&self) -> ProbeSchedule {
        ProbeSchedule {
            interval: self.interval,
            timeout: self.timeout,
            healthy_threshold: self.healthy_threshold,
            unhealthy_threshold: self.unhealthy_threshold,
        }
    }
}

impl From<ProbeSchedule> for TcpProbeOptions {
    fn from(s: ProbeSchedule) -> Self {
        TcpProbeOptions {
            interval: s.interval,
            timeout: s.timeout,
            healthy_threshold: s.healthy_threshold,
            unhealthy_threshold: s.unhealthy_threshold,
        }
    }
}

impl FromStr for TcpProbeOptions {
    type Err = Error;
    /// Parses `tcp-probe` or `tcp-probe?key=value&...` (see [`SpecOptions::from_spec`]).
    fn from_str(s: &str) -> Result<TcpProbeOptions> {
        TcpProbeOptions::from_spec(s)
    }
}

impl fmt::Display for TcpProbeOptions {
    /// The canonical spec (defaults omitted), which parses back to the same options
    /// (durations are shown in whole milliseconds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_spec())
    }
}

/// Builds a built-in transport from its spec string: `"always-available"` (no options),
/// `"tcp-probe[?key=value&...]"`, or an active health check of [`crate::probe`]:
/// `"http-probe[?...]"`, `"grpc-health[?...]"`. Anything else is `invalid-argument`.
pub fn transport_from_spec(spec: &str) -> Result<Arc<dyn Transport>> {
    let (name, params) = crate::spec::split_spec("transport", spec)?;
    if let Some(probe) = crate::probe::transport_from_spec(name, spec) {
        return probe;
    }
    match name {
        "always-available" if params.is_empty() => Ok(Arc::new(AlwaysAvailable)),
        "always-available" => Err(Error::InvalidArgument(format!(
            "transport {spec:?}: always-available has no options"
        ))),
        "tcp-probe" => Ok(Arc::new(TcpProbe::new(TcpProbeOptions::from_spec(spec)?))),
        other => Err(Error::InvalidArgument(format!(
            "unknown transport {other:?}; expected always-available, tcp-probe, http-probe or \
             grpc-health"
        ))),
    }
}

/// One TCP connect to `addr` (`host:port`, resolved), bounded by `timeout`.
/// `Ok` when the peer accepted the connection (which is closed at once).
///
/// A name is resolved on the library runtime's blocking pool, and concurrent probes of
/// one name share one lookup (see [`resolve`]); the timeout covers the lookup too.
pub async fn probe_tcp(addr: &str, timeout: Duration) -> std::result::Result<(), String> {
    let attempt = async {
        let mut last = None;
        for target in resolve(addr).await? {
            match TcpStream::connect(target).await {
                Ok(_stream) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => format!("connect to {addr}: {e}"),
            None => format!("connect to {addr}: the name has no addresses"),
        })
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("connect to {addr}: timed out after {timeout:?}")),
    }
}

/// A lookup in progress: its answer, once there.
type Lookup = watch::Receiver<Option<std::result::Result<Vec<SocketAddr>, String>>>;

fn lookups() -> MutexGuard<'static, HashMap<String, Lookup>> {
    static LOOKUPS: OnceLock<Mutex<HashMap<String, Lookup>>> = OnceLock::new();
    LOOKUPS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Forgets a lookup when it ends (also when it panics).
struct Forget(String);

impl Drop for Forget {
    fn drop(&mut self) {
        lookups().remove(&self.0);
    }
}

/// The addresses of `addr` (`host:port`; `ip:port` and `[v6]:port` need no lookup).
///
/// The system resolver (`getaddrinfo`) blocks, so it runs on the library runtime's
/// blocking pool, and there is at most one lookup per `addr` at a time: a caller that
/// finds one under way waits for its answer. Answers are not cached; the next call after
/// an answer looks the name up again.
///
/// ```
/// # peerlb::runtime::handle().block_on(async {
/// let addrs = peerlb::tcp_probe::resolve("127.0.0.1:80").await.unwrap();
/// assert_eq!(addrs, ["127.0.0.1:80".parse().unwrap()]);
/// assert!(peerlb::tcp_probe::resolve("localhost:80").await.unwrap().len() >= 1);
/// # });
/// ```
pub async fn resolve(addr: &str) -> std::result::Result<Vec<SocketAddr>, String> {
    if let Ok(literal) = addr.parse::<SocketAddr>() {
        return Ok(vec![literal]);
    }
    let mut answer = {
        let mut lookups = lookups();
        match lookups.get(addr) {
            Some(under_way) => under_way.clone(),
            None => {
                let (tx, rx) = watch::channel(None);
                lookups.insert(addr.to_owned(), rx.clone());
                let name = addr.to_owned();
                drop(crate::runtime::spawn_blocking(move || {
                    let _forget = Forget(name.clone());
                    let found = name
                        .to_socket_addrs()
                        .map(Iterator::collect)
                        .map_err(|e| format!("resolve {name}: {e}"));
                    let _ = tx.send(Some(found));
                }));
                rx
            }
        }
    };
    let result = answer
        .wait_for(Option::is_some)
        .await
        .map_err(|_| format!("resolve {addr}: the lookup ended without an answer"))?;
    result
        .clone()
        .unwrap_or_else(|| Err(format!("resolve {addr}: no answer")))
}

/// One TCP connect per probe (resolution included).
struct TcpConnect {
    timeout: Duration,
}

impl Prober for TcpConnect {
    type Session = ();

    fn session(&self, _addr: &str) {}

    fn probe<'a>(
        &'a self,
        addr: &'a str,
        _session: &'a mut (),
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>> {
        Box::pin(probe_tcp(addr, self.timeout))
    }
}

/// The `tcp-probe` transport: a peer is available while it accepts TCP connections. It
/// runs the probe schedule every probe transport shares (see [`crate::probe`]).
pub struct TcpProbe {
    options: TcpProbeOptions,
    probes: ProbeTransport<TcpConnect>,
}

impl TcpProbe {
    /// A transport probing with these options.
    pub fn new(options: TcpProbeOptions) -> TcpProbe {
        let connect = TcpConnect {
            timeout: options.timeout,
        };
        TcpProbe {
            options,
            probes: ProbeTransport::new("tcp-probe", connect, options.schedule()),
        }
    }

    /// Its options.
    pub fn options(&self) -> TcpProbeOptions {
        self.options
    }
}

impl Default for TcpProbe {
    fn default() -> Self {
        TcpProbe::new(TcpProbeOptions::default())
    }
}

impl fmt::Debug for TcpProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpProbe")
            .field("options", &self.options)
            .finish()
    }
}

impl Transport for TcpProbe {
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> std::result::Result<(), String> {
        self.probes.retain(id, subscriber)
    }

    fn release(&self, id: &PeerId, subscriber: &Subscriber) -> std::result::Result<(), String> {
        self.probes.release(id, subscriber)
    }

    fn name(&self) -> &str {
        "tcp-probe"
    }
}
