//! The DNS updater: A/AAAA records + a port, or SRV records, polled.
//!
//! * **Polling.** After each answer the next poll waits the smallest TTL of the answer's
//!   records, but never less than [`DnsUpdater::min_interval`] (default 1 s) nor more than
//!   [`DnsUpdater::max_interval`] (default 60 s). After a failure it waits `min_interval`.
//!   The resolver's cache is cleared before every poll, so the TTL is the only delay.
//! * **SRV.** Only the targets of the lowest priority present are used (as RFC 2782 says;
//!   the others are fallbacks). Peer id = `target:port` (target without its final dot),
//!   peer weight = the SRV weight (0 counts as 1).
//! * **Keep last good.** SERVFAIL, REFUSED, a timeout or an unreachable server keep the
//!   last good set and report a `source-failed` error.
//! * **Flap protection.** An answer that would remove *every* peer (NXDOMAIN, or an answer
//!   with no records) is applied only after it has been seen on
//!   [`DnsUpdater::empty_threshold`] consecutive polls (default 3); until then the last
//!   good set stays.
//!
//! Built on `hickory-resolver`; the nameserver is the system's (`/etc/resolv.conf`)
//! unless [`DnsUpdater::nameserver`] names one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{Name, ResolveError, Resolver, TokioResolver};

use super::{Binding, BoxFuture, Driver, EventCallback, Sink};
use crate::{Error, PeerList, PeerSpec, Result};

/// Which records to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsRecord {
    /// A records; peer = `ip:port`.
    A {
        /// The port every address gets.
        port: u16,
    },
    /// AAAA records; peer = `[ip]:port`.
    Aaaa {
        /// The port every address gets.
        port: u16,
    },
    /// A and AAAA records together.
    Ip {
        /// The port every address gets.
        port: u16,
    },
    /// SRV records: port, weight and priority come from the records.
    Srv,
}

impl DnsRecord {
    /// The record kind by name, as the bindings take it: `"srv"` (the default when `kind`
    /// is `None`; ports come from the records, so `port` is ignored), or `"a"`, `"aaaa"`,
    /// `"ip"` (A and AAAA), which need `port` (1..=65535). Anything else is
    /// `invalid-argument`.
    ///
    /// ```
    /// use peerlb::updater::DnsRecord;
    /// assert_eq!(DnsRecord::from_name(None, None).unwrap(), DnsRecord::Srv);
    /// assert_eq!(DnsRecord::from_name(Some("a"), Some(80)).unwrap(), DnsRecord::A { port: 80 });
    /// assert!(DnsRecord::from_name(Some("a"), None).is_err());
    /// assert!(DnsRecord::from_name(Some("mx"), Some(80)).is_err());
    /// ```
    pub fn from_name(kind: Option<&str>, port: Option<u16>) -> Result<DnsRecord> {
        let kind = kind.unwrap_or("srv");
        let port = || match port {
            Some(p) if p > 0 => Ok(p),
            Some(_) => Err(Error::InvalidArgument(
                "DNS updater port must be 1..=65535".into(),
            )),
            None => Err(Error::InvalidArgument(format!(
                "DNS record {kind:?} needs a port (1..=65535)"
            ))),
        };
        match kind {
            "srv" => Ok(DnsRecord::Srv),
            "a" => Ok(DnsRecord::A { port: port()? }),
            "aaaa" => Ok(DnsRecord::Aaaa { port: port()? }),
            "ip" => Ok(DnsRecord::Ip { port: port()? }),
            other => Err(Error::InvalidArgument(format!(
                "DNS record must be \"srv\", \"a\", \"aaaa\" or \"ip\", not {other:?}"
            ))),
        }
    }
}

/// Follows a DNS name (see the [module docs](self)).
///
/// ```no_run
/// use std::time::Duration;
/// use peerlb::{ListOptions, PeerList};
/// use peerlb::updater::{DnsRecord, DnsUpdater};
/// let list = PeerList::new(ListOptions::default().strategy_name("weighted-round-robin").unwrap()).unwrap();
/// let binding = DnsUpdater::new("_http._tcp.backends.example.", DnsRecord::Srv)
///     .unwrap()
///     .nameserver("127.0.0.1:5353".parse().unwrap())
///     .min_interval(Duration::from_secs(2))
///     .bind(&list);
/// binding.start().unwrap();
/// ```
#[derive(Clone)]
pub struct DnsUpdater {
    name: Name,
    record: DnsRecord,
    nameserver: Option<SocketAddr>,
    min_interval: Duration,
    max_interval: Duration,
    timeout: Duration,
    empty_threshold: u32,
    on_event: Option<EventCallback>,
}

impl DnsUpdater {
    /// Follows `name` (made fully qualified if it is not). Errors with
    /// `invalid-argument` when `name` is not a domain name or a port is 0.
    pub fn new(name: &str, record: DnsRecord) -> Result<DnsUpdater> {
        let mut parsed = Name::from_utf8(name)
            .map_err(|e| Error::InvalidArgument(format!("bad DNS name {name:?}: {e}")))?;
        if name.is_empty() {
            return Err(Error::InvalidArgument("empty DNS name".into()));
        }
        parsed.set_fqdn(true);
        if let DnsRecord::A { port: 0 } | DnsRecord::Aaaa { port: 0 } | DnsRecord::Ip { port: 0 } =
            record
        {
            return Err(Error::InvalidArgument(
                "DNS updater port must be 1..=65535".into(),
            ));
        }
        Ok(DnsUpdater {
            name: parsed,
            record,
            nameserver: None,
            min_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(2),
            empty_threshold: 3,
            on_event: None,
        })
    }

    /// Asks this nameserver (UDP, falling back to TCP for truncated answers) instead of
    /// the system's.
    pub fn nameserver(mut self, addr: SocketAddr) -> DnsUpdater {
        self.nameserver = Some(addr);
        self
    }

    /// The shortest wait between two polls (default 1 s; at least 1 ms).
    pub fn min_interval(mut self, d: Duration) -> DnsUpdater {
        self.min_interval = d.max(Duration::from_millis(1));
        self.max_interval = self.max_interval.max(self.min_interval);
        self
    }

    /// The longest wait between two polls, whatever the TTL (default 60 s).
    pub fn max_interval(mut self, d: Duration) -> DnsUpdater {
        self.max_interval = d.max(self.min_interval);
        self
    }

    /// How long one query may take before it counts as a failure (default 2 s).
    pub fn timeout(mut self, d: Duration) -> DnsUpdater {
        self.timeout = d.max(Duration::from_millis(1));
        self
    }

    /// How many consecutive empty answers (NXDOMAIN / no records) it takes to empty the
    /// list (default 3; 1 applies them at once).
    pub fn empty_threshold(mut self, n: u32) -> DnsUpdater {
        self.empty_threshold = n.max(1);
        self
    }

    /// Receives [`super::UpdaterEvent`]s (see the [module docs](super)).
    pub fn on_event(mut self, callback: EventCallback) -> DnsUpdater {
        self.on_event = Some(callback);
        self
    }

    /// Ties the name to `list`; [`Binding::start`] starts polling on the library runtime
    /// (the first query is sent at once; `start` does not wait for it).
    pub fn bind(&self, list: &PeerList) -> Binding {
        let kind = match self.record {
            DnsRecord::A { port } => format!("a:{port}"),
            DnsRecord::Aaaa { port } => format!("aaaa:{port}"),
            DnsRecord::Ip { port } => format!("ip:{port}"),
            DnsRecord::Srv => "srv".to_owned(),
        };
        Binding::new(
            Arc::new(DnsDriver(self.clone())),
            list.clone(),
            self.on_event.clone(),
            format!("dns:{kind}:{}", self.name),
        )
    }

    fn resolver(&self) -> TokioResolver {
        let config = match self.nameserver {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
                config
            }
            None => match hickory_resolver::system_conf::read_system_conf() {
                Ok((config, _)) => config,
                Err(_) => ResolverConfig::default(),
            },
        };
        let mut opts = ResolverOpts::default();
        opts.timeout = self.timeout;
        opts.attempts = 1;
        opts.cache_size = 0;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        opts.ndots = 0;
        Resolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(opts)
            .build()
    }
}

/// One poll's result.
enum Answer {
    Peers(Vec<PeerSpec>, Option<Duration>),
    Empty,
}

async fn query(
    resolver: &TokioResolver,
    name: &Name,
    rtype: RecordType,
) -> std::result::Result<Option<(Vec<RData>, u32)>, ResolveError> {
    match resolver.lookup(name.clone(), rtype).await {
        Ok(lookup) => {
            let ttl = lookup.records().iter().map(|r| r.ttl()).min().unwrap_or(0);
            let data: Vec<RData> = lookup
                .records()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| r.data().clone())
                .collect();
            if data.is_empty() {
                Ok(None)
            } else {
                Ok(Some((data, ttl)))
            }
        }
        Err(e) => match e.proto().map(|p| p.kind()) {
            Some(ProtoErrorKind::NoRecordsFound { response_code, .. })
                if matches!(
                    *response_code,
                    ResponseCode::NXDomain | ResponseCode::NoError
                ) =>
            {
                Ok(None)
            }
            _ => Err(e),
        },
    }
}

impl DnsUpdater {
    async fn poll(&self, resolver: &TokioResolver) -> std::result::Result<Answer, String> {
        resolver.clear_cache();
        let types: &[RecordType] = match self.record {
            DnsRecord::A { .. } => &[RecordType::A],
            DnsRecord::Aaaa { .. } => &[RecordType::AAAA],
            DnsRecord::Ip { .. } => &[RecordType::A, RecordType::AAAA],
            DnsRecord::Srv => &[RecordType::SRV],
        };
        let mut answers = Vec::new();
        let mut ttl: Option<u32> = None;
        for rtype in types {
            let found = query(resolver, &self.name, *rtype)
                .await
                .map_err(|e| format!("dns {} {}: {e}", rtype, self.name))?;
            let Some((data, t)) = found else { continue };
            ttl = Some(ttl.map_or(t, |old| old.min(t)));
            answers.extend(data);
        }
        let peers = answer_peers(self.record, answers);
        if peers.is_empty() {
            return Ok(Answer::Empty);
        }
        Ok(Answer::Peers(
            peers,
            ttl.map(|t| Duration::from_secs(u64::from(t))),
        ))
    }
}

/// The peers an answer names, for the records `record` follows (records of other types are
/// ignored): `ip:port` / `[ip]:port` for A/AAAA, `target:port` weighted by the SRV weight
/// (0 counts as 1) for the SRV records of the lowest priority present.
pub(crate) fn answer_peers(record: DnsRecord, answers: Vec<RData>) -> Vec<PeerSpec> {
    let mut peers = Vec::new();
    let mut srvs = Vec::new();
    for rdata in answers {
        match (rdata, record) {
            (RData::A(a), DnsRecord::A { port } | DnsRecord::Ip { port }) => {
                peers.push(PeerSpec::new(format!("{}:{port}", a.0)))
            }
            (RData::AAAA(a), DnsRecord::Aaaa { port } | DnsRecord::Ip { port }) => {
                peers.push(PeerSpec::new(format!("[{}]:{port}", a.0)))
            }
            (RData::SRV(srv), DnsRecord::Srv) => srvs.push(srv),
            _ => {}
        }
    }
    if let Some(best) = srvs.iter().map(|s| s.priority()).min() {
        for srv in srvs.iter().filter(|s| s.priority() == best) {
            let target = srv.target().to_utf8();
            let target = target.trim_end_matches('.');
            peers.push(PeerSpec::weighted(
                format!("{target}:{}", srv.port()),
                u32::from(srv.weight()).max(1),
            ));
        }
    }
    peers
}

struct DnsDriver(DnsUpdater);

impl Driver for DnsDriver {
    fn start(&self, sink: Arc<Sink>) -> Result<Option<BoxFuture<()>>> {
        let updater = self.0.clone();
        Ok(Some(Box::pin(async move {
            // Reading the system's configuration (/etc/resolv.conf) is file I/O: off the
            // async workers. The queries themselves are non-blocking sockets.
            let config = updater.clone();
            let resolver = match crate::runtime::spawn_blocking(move || config.resolver()).await {
                Ok(resolver) => resolver,
                Err(e) => {
                    let message = format!("dns {}: cannot set up a resolver: {e}", updater.name);
                    sink.off_worker(move |s| s.fail(Error::SourceFailed(message)))
                        .await;
                    return;
                }
            };
            let mut empties: u32 = 0;
            loop {
                // Applying calls the list's transport and the event callback: off the
                // async workers, and waited for before the next poll.
                let wait = match updater.poll(&resolver).await {
                    Ok(Answer::Peers(peers, ttl)) => {
                        empties = 0;
                        sink.off_worker(move |s| s.apply(peers)).await;
                        ttl.unwrap_or(updater.min_interval)
                    }
                    Ok(Answer::Empty) => {
                        empties = empties.saturating_add(1);
                        if empties >= updater.empty_threshold {
                            sink.off_worker(|s| s.apply(Vec::new())).await;
                        } else {
                            sink.confirm();
                        }
                        updater.min_interval
                    }
                    Err(message) => {
                        sink.off_worker(move |s| s.fail(Error::SourceFailed(message)))
                            .await;
                        updater.min_interval
                    }
                };
                tokio::time::sleep(wait.clamp(updater.min_interval, updater.max_interval)).await;
            }
        })))
    }
}
