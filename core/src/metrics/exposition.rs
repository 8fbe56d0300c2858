//! The text a scrape returns: samples of lists encoded by `prometheus-client` (the
//! Prometheus project's Rust client) through a collector, in the Prometheus text format
//! 0.0.4 or in OpenMetrics.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::latency::{bucket_bound_seconds, LatencySnapshot, FINITE_BUCKETS};
use super::series::SeriesCounts;
use super::MetricsFormat;

/// One peer (or, with per-peer labels off, every peer of a list summed) at scrape time.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerSample {
    /// The peer id; `None` for a list's collapsed series.
    pub(crate) id: Option<String>,
    pub(crate) available: u64,
    pub(crate) ejected: u64,
    pub(crate) disabled: u64,
    pub(crate) counts: SeriesCounts,
    pub(crate) latency: LatencySnapshot,
}

/// One list at scrape time.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListSample {
    pub(crate) name: String,
    pub(crate) peers: Vec<PeerSample>,
    pub(crate) total: usize,
    pub(crate) available: usize,
    pub(crate) ejected: usize,
    pub(crate) disabled: usize,
    pub(crate) panic: bool,
    pub(crate) retries: u64,
    pub(crate) budget_exhausted: u64,
    /// Circuit breakers, when the list has any.
    pub(crate) breakers: Option<BreakerSample>,
}

/// A list's circuit breakers at scrape time.
#[derive(Debug, Clone, Default)]
pub(crate) struct BreakerSample {
    pub(crate) max_pending: Option<usize>,
    pub(crate) max_pending_per_peer: Option<usize>,
    /// Chooses refused by `max_pending`, and by `max_pending_per_peer`.
    pub(crate) overloaded_list: u64,
    pub(crate) overloaded_peers: u64,
    /// Peers at `max_pending_per_peer` now.
    pub(crate) saturated: usize,
}

/// Encodes `lists` in `format`.
pub(crate) fn encode(lists: Vec<ListSample>, format: MetricsFormat) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Samples(lists)));
    let mut out = String::new();
    let written = match format {
        MetricsFormat::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        }
        MetricsFormat::OpenMetrics => {
            prometheus_client::encoding::text::encode(&mut out, &registry)
        }
    };
    written.expect("writing to a String cannot fail");
    out
}

#[derive(Debug)]
struct Samples(Vec<ListSample>);

/// What a family's samples are.
enum Kind {
    Counter,
    Gauge,
}

/// One value of a family, with its labels.
type Value<'a> = (Vec<(&'static str, &'a str)>, u64);

impl Samples {
    /// A family of per-peer values (`value` of each peer sample).
    fn per_peer<'a>(
        &'a self,
        extra: Option<(&'static str, &'static str)>,
        value: impl Fn(&PeerSample) -> u64,
    ) -> Vec<Value<'a>> {
        let mut values = Vec::new();
        for list in &self.0 {
            for peer in &list.peers {
                let mut labels = vec![("list", list.name.as_str())];
                if let Some(id) = &peer.id {
                    labels.push(("peer", id.as_str()));
                }
                labels.extend(extra);
                values.push((labels, value(peer)));
            }
        }
        values
    }

    /// A family of per-list values; lists where `value` gives `None` are left out.
    fn per_list<'a>(
        &'a self,
        extra: Option<(&'static str, &'static str)>,
        value: impl Fn(&ListSample) -> Option<u64>,
    ) -> Vec<Value<'a>> {
        self.0
            .iter()
            .filter_map(|list| {
                let mut labels = vec![("list", list.name.as_str())];
                labels.extend(extra);
                value(list).map(|v| (labels, v))
            })
            .collect()
    }
}

fn family(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: Kind,
    values: &[Value<'_>],
) -> Result<(), std::fmt::Error> {
    if values.is_empty() {
        return Ok(());
    }
    let metric_type = match kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
    };
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in values {
        let metric: MetricEncoder<'_> = family.encode_family(labels)?;
        match kind {
            Kind::Counter => ConstCounter::new(*value).encode(metric)?,
            Kind::Gauge => {
                ConstGauge::new(i64::try_from(*value).unwrap_or(i64::MAX)).encode(metric)?
            }
        }
    }
    Ok(())
}

impl Collector for Samples {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        family(
            e,
            "peerlb_chosen",
            "Requests started to the peer (choices made).",
            Kind::Counter,
            &self.per_peer(None, |p| p.counts.chosen),
        )?;
        let mut finished = Vec::new();
        for (outcome, value) in [
            (
                "ok",
                (|p: &PeerSample| p.counts.ok) as fn(&PeerSample) -> u64,
            ),
            ("failure", |p| p.counts.failure),
            ("declined", |p| p.counts.declined),
            ("cancelled", |p| p.counts.cancelled),
        ] {
            finished.extend(self.per_peer(Some(("outcome", outcome)), value));
        }
        family(
            e,
            "peerlb_finished",
            "Requests finished, by outcome (ok = chosen - pending - failure - declined - cancelled).",
            Kind::Counter,
            &finished,
        )?;
        family(
            e,
            "peerlb_ejections",
            "Times outlier detection ejected the peer.",
            Kind::Counter,
            &self.per_peer(None, |p| p.counts.ejections),
        )?;
        family(
            e,
            "peerlb_failovers",
            "Sessions that failed over away from the peer (see peerlb's sessions).",
            Kind::Counter,
            &self.per_peer(None, |p| p.counts.failovers),
        )?;
        family(
            e,
            "peerlb_pending_requests",
            "Requests in flight to the peer.",
            Kind::Gauge,
            &self.per_peer(None, |p| p.counts.pending),
        )?;
        family(
            e,
            "peerlb_peer_available",
            "1 while the strategy is offered the peer (retained, available, enabled, not ejected or under the panic floor).",
            Kind::Gauge,
            &self.per_peer(None, |p| p.available),
        )?;
        family(
            e,
            "peerlb_peer_ejected",
            "1 while outlier detection has the peer ejected.",
            Kind::Gauge,
            &self.per_peer(None, |p| p.ejected),
        )?;
        family(
            e,
            "peerlb_peer_disabled",
            "1 while an admin has the peer disabled.",
            Kind::Gauge,
            &self.per_peer(None, |p| p.disabled),
        )?;
        self.encode_latency(e)?;
        family(
            e,
            "peerlb_peers",
            "Peers in the list.",
            Kind::Gauge,
            &self.per_list(None, |l| Some(l.total as u64)),
        )?;
        family(
            e,
            "peerlb_available_peers",
            "Peers the strategy is offered.",
            Kind::Gauge,
            &self.per_list(None, |l| Some(l.available as u64)),
        )?;
        family(
            e,
            "peerlb_ejected_peers",
            "Peers ejected by outlier detection.",
            Kind::Gauge,
            &self.per_list(None, |l| Some(l.ejected as u64)),
        )?;
        family(
            e,
            "peerlb_disabled_peers",
            "Peers an admin disabled.",
            Kind::Gauge,
            &self.per_list(None, |l| Some(l.disabled as u64)),
        )?;
        family(
            e,
            "peerlb_panic_floor_active",
            "1 while too few peers are healthy and ejections are ignored (panic mode).",
            Kind::Gauge,
            &self.per_list(None, |l| Some(u64::from(l.panic))),
        )?;
        family(
            e,
            "peerlb_retries",
            "Retried attempts (after the first) made through the list's retry helpers.",
            Kind::Counter,
            &self.per_list(None, |l| Some(l.retries)),
        )?;
        family(
            e,
            "peerlb_retry_budget_exhausted",
            "Retries the retry budget refused.",
            Kind::Counter,
            &self.per_list(None, |l| Some(l.budget_exhausted)),
        )?;
        self.encode_breakers(e)
    }
}

impl Samples {
    fn encode_latency(&self, e: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let any = self.0.iter().any(|l| !l.peers.is_empty());
        if !any {
            return Ok(());
        }
        let unit = Unit::Seconds;
        let mut family = e.encode_descriptor(
            "peerlb_request_duration",
            "Latency of finished requests whose latency is known (given to finish, or measured for strategies that use outcomes).",
            Some(&unit),
            MetricType::Histogram,
        )?;
        for list in &self.0 {
            for peer in &list.peers {
                let mut labels = vec![("list", list.name.as_str())];
                if let Some(id) = &peer.id {
                    labels.push(("peer", id.as_str()));
                }
                let l = &peer.latency;
                let mut buckets: Vec<(f64, u64)> = (0..FINITE_BUCKETS)
                    .map(|i| (bucket_bound_seconds(i), l.buckets[i]))
                    .collect();
                buckets.push((f64::INFINITY, l.buckets[FINITE_BUCKETS]));
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(
                        l.sum_nanos as f64 / 1e9,
                        l.count(),
                        &buckets,
                        None,
                    )?;
            }
        }
        Ok(())
    }

    fn encode_breakers(&self, e: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        family(
            e,
            "peerlb_max_pending",
            "The list's max_pending circuit breaker: requests in flight at which choose fails with overloaded.",
            Kind::Gauge,
            &self.per_list(None, |l| {
                l.breakers
                    .as_ref()
                    .and_then(|b| b.max_pending)
                    .map(|v| v as u64)
            }),
        )?;
        family(
            e,
            "peerlb_max_pending_per_peer",
            "The max_pending_per_peer circuit breaker: requests in flight at which a peer is not chosen.",
            Kind::Gauge,
            &self.per_list(None, |l| {
                l.breakers
                    .as_ref()
                    .and_then(|b| b.max_pending_per_peer)
                    .map(|v| v as u64)
            }),
        )?;
        family(
            e,
            "peerlb_saturated_peers",
            "Peers at max_pending_per_peer now.",
            Kind::Gauge,
            &self.per_list(None, |l| {
                l.breakers
                    .as_ref()
                    .filter(|b| b.max_pending_per_peer.is_some())
                    .map(|b| b.saturated as u64)
            }),
        )?;
        let mut overloaded = self.per_list(Some(("breaker", "max_pending")), |l| {
            l.breakers
                .as_ref()
                .filter(|b| b.max_pending.is_some())
                .map(|b| b.overloaded_list)
        });
        overloaded.extend(
            self.per_list(Some(("breaker", "max_pending_per_peer")), |l| {
                l.breakers
                    .as_ref()
                    .filter(|b| b.max_pending_per_peer.is_some())
                    .map(|b| b.overloaded_peers)
            }),
        );
        family(
            e,
            "peerlb_overloaded",
            "Chooses a circuit breaker refused (error overloaded).",
            Kind::Counter,
            &overloaded,
        )?;
        let skips: Vec<Value<'_>> = self
            .0
            .iter()
            .filter(|l| {
                l.breakers
                    .as_ref()
                    .is_some_and(|b| b.max_pending_per_peer.is_some())
            })
            .flat_map(|list| {
                list.peers.iter().map(move |peer| {
                    let mut labels = vec![("list", list.name.as_str())];
                    if let Some(id) = &peer.id {
                        labels.push(("peer", id.as_str()));
                    }
                    (labels, peer.counts.limit_skips)
                })
            })
            .collect();
        family(
            e,
            "peerlb_peer_limit_skips",
            "Picks of the peer passed over because it was at max_pending_per_peer.",
            Kind::Counter,
            &skips,
        )
    }
}
