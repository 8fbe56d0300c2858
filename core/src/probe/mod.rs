//! Active health checks as transports: `http-probe` ([`HttpProbeOptions`]) and, with the
//! cargo feature `grpc-health`, `grpc-health` (`GrpcHealthOptions`). They are selected
//! by transport spec string like `tcp-probe` (see
//! [`transport_from_spec`](crate::transport_from_spec)), on every surface.
//!
//! Both follow `tcp-probe`'s schedule and rules: every retained peer is probed on an
//! interval, on the library runtime, each probe bounded by a timeout; a peer is
//! `connecting` until its first probe ends, and the first result decides at once; after
//! that it takes `unhealthy_threshold` failed probes in a row to become `unavailable` and
//! `healthy_threshold` good ones in a row to become `available` again (Envoy's thresholds).
//! No lock is held while a probe runs: a probe task owns its peer's state, and a status
//! change is reported from the runtime's blocking pool, where the list runs its change
//! path. Releasing a peer stops its probe; dropping the transport stops them all.
//!
//! The schedule keys every probe spec takes:
//!
//! | key | default |
//! |---|---|
//! | `interval_ms` (1..=86400000) | 1000 |
//! | `timeout_ms` (1..=86400000) | 500 |
//! | `healthy_threshold` (1..=1000) | 1 |
//! | `unhealthy_threshold` (1..=1000) | 1 |
//!
//! So with the defaults a peer that starts failing is `unavailable` within one interval
//! plus one timeout.

#[cfg(feature = "grpc-health")]
mod grpc;
mod http;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::error::Result;
use crate::peer::{ConnectionStatus, PeerId};
use crate::spec::{ms, parse_int, parse_ms};
use crate::tcp_probe::{MAX_PROBE_DURATION, MAX_THRESHOLD};
use crate::transport::{Subscriber, Transport};

#[cfg(feature = "grpc-health")]
pub use grpc::GrpcHealthOptions;
pub use http::HttpProbeOptions;

/// When and how strictly a probe transport probes (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSchedule {
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// How long one probe (connect, request and answer) may take before it counts as failed.
    pub timeout: Duration,
    /// Consecutive good probes that make an unavailable peer available.
    pub healthy_threshold: u32,
    /// Consecutive failed probes that make an available peer unavailable.
    pub unhealthy_threshold: u32,
}

impl Default for ProbeSchedule {
    fn default() -> Self {
        ProbeSchedule {
            interval: Duration::from_millis(1000),
            timeout: Duration::from_millis(500),
            healthy_threshold: 1,
            unhealthy_threshold: 1,
        }
    }
}

/// The schedule's keys, for `unknown_key` messages.
pub(crate) const SCHEDULE_KEYS: [&str; 4] = [
    "interval_ms",
    "timeout_ms",
    "healthy_threshold",
    "unhealthy_threshold",
];

impl ProbeSchedule {
    /// Sets a schedule key; `None` when `key` is not one.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Option<Result<()>> {
        let max_ms = MAX_PROBE_DURATION.as_millis() as u64;
        let threshold = 1..=MAX_THRESHOLD;
        let set = match key {
            "interval_ms" => parse_ms(key, value, 1..=max_ms).map(|v| self.interval = v),
            "timeout_ms" => parse_ms(key, value, 1..=max_ms).map(|v| self.timeout = v),
            "healthy_threshold" => {
                parse_int(key, value, threshold).map(|v| self.healthy_threshold = v)
            }
            "unhealthy_threshold" => {
                parse_int(key, value, threshold).map(|v| self.unhealthy_threshold = v)
            }
            _ => return None,
        };
        Some(set)
    }

    /// The keys that differ from the defaults, as spec pairs.
    pub(crate) fn changed(&self) -> Vec<(&'static str, String)> {
        let d = ProbeSchedule::default();
        let mut pairs = Vec::new();
        if self.interval != d.interval {
            pairs.push(("interval_ms", ms(self.interval)));
        }
        if self.timeout != d.timeout {
            pairs.push(("timeout_ms", ms(self.timeout)));
        }
        if self.healthy_threshold != d.healthy_threshold {
            pairs.push(("healthy_threshold", self.healthy_threshold.to_string()));
        }
        if self.unhealthy_threshold != d.unhealthy_threshold {
            pairs.push(("unhealthy_threshold", self.unhealthy_threshold.to_string()));
        }
        pairs
    }
}

/// One probe's answer: `Ok` when the peer is healthy, else why not.
pub(crate) type ProbeResult = std::result::Result<(), String>;

/// A kind of probe: one check of one peer (the caller bounds it by the timeout).
pub(crate) trait Prober: Send + Sync + 'static {
    /// The probe state of one peer (e.g. a gRPC channel kept between probes).
    type Session: Send + 'static;

    /// A fresh session for the peer at `addr`.
    fn session(&self, addr: &str) -> Self::Session;

    /// Probes the peer once.
    fn probe<'a>(
        &'a self,
        addr: &'a str,
        session: &'a mut Self::Session,
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;
}

/// A transport that probes every retained peer with `P` on a schedule.
pub(crate) struct ProbeTransport<P: Prober> {
    name: &'static str,
    prober: Arc<P>,
    schedule: ProbeSchedule,
    tasks: Mutex<HashMap<usize, AbortHandle>>,
}

impl<P: Prober> ProbeTransport<P> {
    pub(crate) fn new(name: &'static str, prober: P, schedule: ProbeSchedule) -> Self {
        ProbeTransport {
            name,
            prober: Arc::new(prober),
            schedule,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, AbortHandle>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<P: Prober> fmt::Debug for ProbeTransport<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeTransport")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .finish()
    }
}

/// Where a peer stands between probes: the thresholds' bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    healthy: Option<bool>,
    streak: u32,
}

impl Verdicts {
    /// Takes one probe's result; the status the peer has now.
    pub(crate) fn take(&mut self, ok: bool, schedule: &ProbeSchedule) -> ConnectionStatus {
        let change = match self.healthy {
            None => true,
            Some(up) if up == ok => {
                self.streak = 0;
                false
            }
            Some(_) => {
                self.streak += 1;
                let need = if ok {
                    schedule.healthy_threshold
                } else {
                    schedule.unhealthy_threshold
                };
                self.streak >= need
            }
        };
        if change {
            self.streak = 0;
            self.healthy = Some(ok);
        }
        if self.healthy == Some(true) {
            ConnectionStatus::Available
        } else {
            ConnectionStatus::Unavailable
        }
    }
}

async fn probe_loop<P: Prober>(prober: Arc<P>, addr: String, sub: Subscriber, s: ProbeSchedule) {
    let mut verdicts = Verdicts::default();
    let mut reported: Option<ConnectionStatus> = None;
    let mut session = prober.session(&addr);
    let mut ticker = tokio::time::interval(s.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let ok = match tokio::time::timeout(s.timeout, prober.probe(&addr, &mut session)).await {
            Ok(result) => result.is_ok(),
            Err(_) => false,
        };
        if !ok {
            // A timed-out or failed probe starts over with a fresh session (connection).
            session = prober.session(&addr);
        }
        let status = verdicts.take(ok, &s);
        if reported == Some(status) {
            continue;
        }
        // The list's change path runs user code (strategy, events): on the blocking pool,
        // waited for so reports stay in order. A stale report ends the task.
        let report = sub.clone();
        let taken = crate::runtime::spawn_blocking(move || report.set_status(status))
            .await
            .unwrap_or(false);
        if !taken {
            return;
        }
        reported = Some(status);
    }
}

impl<P: Prober> Transport for ProbeTransport<P> {
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> std::result::Result<(), String> {
        subscriber.set_status(ConnectionStatus::Connecting);
        let key = subscriber.as_ptr() as usize;
        let task = crate::runtime::handle().spawn(probe_loop(
            self.prober.clone(),
            id.as_str().to_owned(),
            subscriber.clone(),
            self.schedule,
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
        self.name
    }
}

impl<P: Prober> Drop for ProbeTransport<P> {
    fn drop(&mut self) {
        for (_, task) in self.lock().drain() {
            task.abort();
        }
    }
}

/// Builds a probe transport from its spec, if `name` is one (`None` otherwise).
pub(crate) fn transport_from_spec(name: &str, spec: &str) -> Option<Result<Arc<dyn Transport>>> {
    use crate::spec::SpecOptions;
    match name {
        "http-probe" => Some(HttpProbeOptions::from_spec(spec).map(|o| o.transport())),
        #[cfg(feature = "grpc-health")]
        "grpc-health" => Some(GrpcHealthOptions::from_spec(spec).map(|o| o.transport())),
        #[cfg(not(feature = "grpc-health"))]
        "grpc-health" => Some(Err(crate::Error::InvalidArgument(format!(
            "transport {spec:?}: this build of peerlb has no grpc-health (cargo feature \
             \"grpc-health\")"
        )))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_need_runs_in_a_row() {
        let s = ProbeSchedule {
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            ..Default::default()
        };
        let mut v = Verdicts::default();
        let up = ConnectionStatus::Available;
        let down = ConnectionStatus::Unavailable;
        assert_eq!(v.take(true, &s), up); // the first result decides
        assert_eq!(v.take(false, &s), up);
        assert_eq!(v.take(false, &s), up);
        assert_eq!(v.take(true, &s), up); // the run is broken
        assert_eq!(v.take(false, &s), up);
        assert_eq!(v.take(false, &s), up);
        assert_eq!(v.take(false, &s), down);
        assert_eq!(v.take(true, &s), down);
        assert_eq!(v.take(true, &s), up);
    }
}
