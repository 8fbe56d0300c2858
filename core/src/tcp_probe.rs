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
//! Transport spec strings name a built-in transport with options, in the same syntax as
//! strategy names (`name?key=value&key=value`): `"always-available"`, `"tcp-probe"`,
//! `"tcp-probe?interval_ms=200&timeout_ms=100"`. Every surface (C, Python, Node) accepts
//! them and parses them here.
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
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use crate::error::{Error, Result};
use crate::peer::{ConnectionStatus, PeerId};
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

fn parse_u64(key: &str, value: &str) -> Result<u64> {
    value
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("tcp-probe option {key}: bad value {value:?}")))
}

fn parse_ms(key: &str, value: &str) -> Result<Duration> {
    let ms = parse_u64(key, value)?;
    let d = Duration::from_millis(ms);
    if ms == 0 || d > MAX_PROBE_DURATION {
        return Err(Error::InvalidArgument(format!(
            "tcp-probe option {key}: {ms} is out of range 1..=86400000"
        )));
    }
    Ok(d)
}

fn parse_threshold(key: &str, value: &str) -> Result<u32> {
    let n = parse_u64(key, value)?;
    if n == 0 || n > 1000 {
        return Err(Error::InvalidArgument(format!(
            "tcp-probe option {key}: {n} is out of range 1..=1000"
        )));
    }
    Ok(n as u32)
}

impl TcpProbeOptions {
    /// Sets one option by its spec key (`interval_ms`, `timeout_ms`, `healthy_threshold`,
    /// `unhealthy_threshold`); an unknown key or bad value is `invalid-argument`.
    pub fn set_param(mut self, key: &str, value: &str) -> Result<Self> {
        match key {
            "interval_ms" => self.interval = parse_ms(key, value)?,
            "timeout_ms" => self.timeout = parse_ms(key, value)?,
            "healthy_threshold" => self.healthy_threshold = parse_threshold(key, value)?,
            "unhealthy_threshold" => self.unhealthy_threshold = parse_threshold(key, value)?,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "tcp-probe has no option {other:?}; expected interval_ms, timeout_ms, \
                     healthy_threshold or unhealthy_threshold"
                )))
            }
        }
        Ok(self)
    }
}

impl FromStr for TcpProbeOptions {
    type Err = Error;
    /// Parses `tcp-probe` or `tcp-probe?key=value&...`.
    fn from_str(s: &str) -> Result<TcpProbeOptions> {
        let (name, params) = crate::spec::split_spec("transport", s)?;
        if name != "tcp-probe" {
            return Err(Error::InvalidArgument(format!(
                "transport {s:?}: expected tcp-probe"
            )));
        }
        let mut o = TcpProbeOptions::default();
        for (k, v) in params {
            o = o.set_param(k, v)?;
        }
        Ok(o)
    }
}

impl fmt::Display for TcpProbeOptions {
    /// The compact spec (defaults omitted), which parses back to the same options.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = TcpProbeOptions::default();
        let mut keys = Vec::new();
        if self.interval != d.interval {
            keys.push(format!("interval_ms={}", self.interval.as_millis()));
        }
        if self.timeout != d.timeout {
            keys.push(format!("timeout_ms={}", self.timeout.as_millis()));
        }
        if self.healthy_threshold != d.healthy_threshold {
            keys.push(format!("healthy_threshold={}", self.healthy_threshold));
        }
        if self.unhealthy_threshold != d.unhealthy_threshold {
            keys.push(format!("unhealthy_threshold={}", self.unhealthy_threshold));
        }
        if keys.is_empty() {
            f.write_str("tcp-probe")
        } else {
            write!(f, "tcp-probe?{}", keys.join("&"))
        }
    }
}

/// Builds a built-in transport from its spec string: `"always-available"` (no options)
/// or `"tcp-probe[?key=value&...]"`. Anything else is `invalid-argument`.
pub fn transport_from_spec(spec: &str) -> Result<Arc<dyn Transport>> {
    let (name, params) = crate::spec::split_spec("transport", spec)?;
    match name {
        "always-available" if params.is_empty() => Ok(Arc::new(AlwaysAvailable)),
        "always-available" => Err(Error::InvalidArgument(format!(
            "transport {spec:?}: always-available has no options"
        ))),
        "tcp-probe" => Ok(Arc::new(TcpProbe::new(spec.parse()?))),
        other => Err(Error::InvalidArgument(format!(
            "unknown transport {other:?}; expected always-available or tcp-probe"
        ))),
    }
}

/// One TCP connect to `addr` (`host:port`, resolved), bounded by `timeout`.
/// `Ok` when the peer accepted the connection (which is closed at once).
pub async fn probe_tcp(addr: &str, timeout: Duration) -> std::result::Result<(), String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(e)) => Err(format!("connect to {addr}: {e}")),
        Err(_) => Err(format!("connect to {addr}: timed out after {timeout:?}")),
    }
}

/// The `tcp-probe` transport: a peer is available while it accepts TCP connections.
pub struct TcpProbe {
    options: TcpProbeOptions,
    tasks: Mutex<HashMap<usize, AbortHandle>>,
}

impl TcpProbe {
    /// A transport probing with these options.
    pub fn new(options: TcpProbeOptions) -> TcpProbe {
        TcpProbe {
            options,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Its options.
    pub fn options(&self) -> TcpProbeOptions {
        self.options
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, AbortHandle>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
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

async fn probe_loop(addr: String, sub: Subscriber, o: TcpProbeOptions) {
    let mut current: Option<bool> = None;
    let mut streak: u32 = 0;
    let mut ticker = tokio::time::interval(o.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let ok = probe_tcp(&addr, o.timeout).await.is_ok();
        let change = match current {
            None => true,
            Some(up) if up == ok => {
                streak = 0;
                false
            }
            Some(_) => {
                streak += 1;
                let need = if ok {
                    o.healthy_threshold
                } else {
                    o.unhealthy_threshold
                };
                streak >= need
            }
        };
        if change {
            streak = 0;
            current = Some(ok);
        }
        let status = if current == Some(true) {
            ConnectionStatus::Available
        } else {
            ConnectionStatus::Unavailable
        };
        // Reported after every probe (a no-op when unchanged), so a task whose peer was
        // released or whose list is gone ends even if the transport lives on.
        if !sub.set_status(status) {
            return;
        }
    }
}

impl Transport for TcpProbe {
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> std::result::Result<(), String> {
        subscriber.set_status(ConnectionStatus::Connecting);
        let key = subscriber.as_ptr() as usize;
        let task = crate::runtime::handle().spawn(probe_loop(
            id.as_str().to_owned(),
            subscriber.clone(),
            self.options,
        ));
        if let Some(old) = self.lock().insert(key, task.abort_handle()) {
            old.abort();
        }
        Ok(())
    }

    fn release(&self, _id: &PeerId, subscriber: &Subscriber) -> std::result::Result<(), String> {
        if let Some(task) = self.lock().remove(&(subscriber.as_ptr() as usize)) {
            task.abort();
        }
        Ok(())
    }

    fn name(&self) -> &str {
        "tcp-probe"
    }
}

impl Drop for TcpProbe {
    fn drop(&mut self) {
        for (_, task) in self.lock().drain() {
            task.abort();
        }
    }
}
