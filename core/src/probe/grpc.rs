//! The `grpc-health` transport (cargo feature `grpc-health`): a peer is available while the
//! standard `grpc.health.v1.Health/Check` answers `SERVING` for the service (gRPC's health
//! checking protocol, as Envoy's gRPC health check and gRPC clients use it).
//!
//! Each peer keeps one HTTP/2 channel (tonic) between probes, as a gRPC client keeps its
//! connection; a failed or timed-out probe drops it and the next one connects again.
//! `NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN`, an RPC error (e.g. `NOT_FOUND` for a
//! service the server does not know, `UNIMPLEMENTED` for a server without the health
//! service) and a timeout all count as failed. Spec:
//!
//! `grpc-health?service=my.Service&interval_ms=..&timeout_ms=..&healthy_threshold=..`
//!
//! | key | default |
//! |---|---|
//! | `service` (the service name asked about; visible ASCII, at most 1024 bytes) | empty: the server as a whole |
//!
//! plus the schedule keys of [`super`]. Plaintext only (no TLS).
//!
//! ```
//! use peerlb::probe::GrpcHealthOptions;
//! use peerlb::strategy::SpecOptions;
//! let o = GrpcHealthOptions::from_spec("grpc-health?service=api.v1.Users&timeout_ms=200").unwrap();
//! assert_eq!(o.service, "api.v1.Users");
//! assert_eq!(o.to_spec(), "grpc-health?service=api.v1.Users&timeout_ms=200");
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::{ProbeResult, ProbeSchedule, ProbeTransport, Prober, SCHEDULE_KEYS};
use crate::error::{Error, Result};
use crate::spec::{unknown_key, SpecOptions};
use crate::transport::Transport;

/// The longest `service` a spec may give.
const MAX_SERVICE: usize = 1024;

/// Options of the `grpc-health` transport (see the [module docs](crate::probe)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcHealthOptions {
    /// Interval, timeout and thresholds.
    pub schedule: ProbeSchedule,
    /// The service asked about; empty for the server as a whole.
    pub service: String,
}

impl SpecOptions for GrpcHealthOptions {
    const KIND: &'static str = "transport";
    const NAME: &'static str = "grpc-health";

    /// `service`, and the schedule keys.
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if let Some(set) = self.schedule.set(key, value) {
            return set;
        }
        match key {
            "service" => {
                if value.len() > MAX_SERVICE || !value.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::InvalidArgument(format!(
                        "service must be at most {MAX_SERVICE} visible ASCII characters, got {value:?}"
                    )));
                }
                self.service = value.to_owned();
                Ok(())
            }
            other => {
                let mut known = vec!["service"];
                known.extend(SCHEDULE_KEYS);
                Err(unknown_key(Self::NAME, other, &known))
            }
        }
    }

    fn changed(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if !self.service.is_empty() {
            pairs.push(("service", self.service.clone()));
        }
        pairs.extend(self.schedule.changed());
        pairs
    }
}

impl FromStr for GrpcHealthOptions {
    type Err = Error;
    fn from_str(s: &str) -> Result<GrpcHealthOptions> {
        GrpcHealthOptions::from_spec(s)
    }
}

impl fmt::Display for GrpcHealthOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_spec())
    }
}

impl GrpcHealthOptions {
    /// The transport that probes with these options.
    pub fn transport(self) -> Arc<dyn Transport> {
        let schedule = self.schedule;
        Arc::new(ProbeTransport::new(
            "grpc-health",
            GrpcProber { options: self },
            schedule,
        ))
    }
}

struct GrpcProber {
    options: GrpcHealthOptions,
}

impl GrpcProber {
    async fn check(&self, addr: &str, channel: &mut Option<Channel>) -> ProbeResult {
        let ch = match channel {
            Some(ch) => ch.clone(),
            None => {
                let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| format!("grpc {addr}: {e}"))?
                    .connect_timeout(self.options.schedule.timeout);
                let ch = endpoint
                    .connect()
                    .await
                    .map_err(|e| format!("grpc {addr}: connect: {e}"))?;
                *channel = Some(ch.clone());
                ch
            }
        };
        let answer = HealthClient::new(ch)
            .check(HealthCheckRequest {
                service: self.options.service.clone(),
            })
            .await
            .map_err(|e| format!("grpc {addr}: Health/Check: {}: {}", e.code(), e.message()))?;
        match answer.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            other => Err(format!(
                "grpc {addr}: {:?} is {}",
                self.options.service,
                other.as_str_name()
            )),
        }
    }
}

impl Prober for GrpcProber {
    type Session = Option<Channel>;

    fn session(&self, _addr: &str) -> Option<Channel> {
        None
    }

    fn probe<'a>(
        &'a self,
        addr: &'a str,
        session: &'a mut Option<Channel>,
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>> {
        Box::pin(self.check(addr, session))
    }
}
