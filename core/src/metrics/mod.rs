//! Metrics: every list's counters, gauges and latency histograms as Prometheus text.
//!
//! [`PeerList::metrics`](crate::PeerList::metrics) gives one list's text; [`gather`] gives
//! every live list of the process (the [`registry`](crate::registry)), which is what the
//! admin endpoint's `GET /metrics` serves. The text is encoded by `prometheus-client`, in
//! the Prometheus text format 0.0.4 ([`MetricsFormat::Prometheus`], what `promtool check
//! metrics` reads) or in OpenMetrics ([`MetricsFormat::OpenMetrics`]).
//!
//! # Series
//!
//! Per peer, labels `list` and `peer`:
//!
//! | metric | type | what |
//! |---|---|---|
//! | `peerlb_chosen_total` | counter | requests started to the peer |
//! | `peerlb_finished_total{outcome}` | counter | requests finished: `ok`, `failure`, `declined`, `cancelled` |
//! | `peerlb_ejections_total` | counter | outlier ejections |
//! | `peerlb_failovers_total` | counter | sessions that failed over away from the peer ([`crate::session`]) |
//! | `peerlb_pending_requests` | gauge | requests in flight |
//! | `peerlb_peer_available` | gauge | 1 while the strategy is offered the peer |
//! | `peerlb_peer_ejected` | gauge | 1 while ejected |
//! | `peerlb_peer_disabled` | gauge | 1 while an admin has it disabled |
//! | `peerlb_request_duration_seconds` | histogram | latencies that are known (below) |
//! | `peerlb_peer_limit_skips_total` | counter | with `max_pending_per_peer`: picks passed over at the limit |
//!
//! That is 31 series per peer (the histogram is 20: 18 buckets, `_sum` and `_count`), 32
//! with a per-peer circuit breaker. Per list, label `list`: `peerlb_peers`,
//! `peerlb_available_peers`, `peerlb_ejected_peers`, `peerlb_disabled_peers`,
//! `peerlb_panic_floor_active` (gauges), `peerlb_retries_total`,
//! `peerlb_retry_budget_exhausted_total` (counters; retries made through the list by
//! [`crate::retry`]), and with circuit breakers `peerlb_max_pending`,
//! `peerlb_max_pending_per_peer`, `peerlb_saturated_peers` (gauges) and
//! `peerlb_overloaded_total{breaker}` (counter).
//!
//! # What is recorded, and what it costs
//!
//! Most numbers are read at scrape time from what the list keeps anyway (each peer's
//! choices, failures and requests in flight, the list's class tally), so choose and finish
//! pay nothing for them. Recording adds only: a count for `declined` and `cancelled`
//! outcomes, one per ejection, and a latency sample when a latency is **known**: given to
//! `finish`, or measured by the list because its strategy asks for outcomes (`peak-ewma`).
//! A `finish` without a latency on a list whose strategy does not measure records no
//! latency. A sample goes into the recording thread's own shard of the peer's histogram
//! (see `latency.rs`), a few nanoseconds with no atomic read-modify-write. A list made with
//! `metrics(false)` records nothing at all.
//!
//! # Cardinality
//!
//! A removed peer's series stay while requests to it are in flight and disappear from the
//! first scrape after its last request finished; `peer_labels(false)` collapses each list's
//! per-peer series into one (summed; the histogram is the list's).
//!
//! ```
//! use std::time::Duration;
//! use peerlb::{ListOptions, Outcome, PeerList, Request};
//! let list = PeerList::new(ListOptions::default().name("api").shuffle(false)).unwrap();
//! list.update(["a:1"], None::<&str>).unwrap();
//! list.start().unwrap();
//! list.choose(&Request::new()).unwrap().finish(Outcome::Ok, Some(Duration::from_millis(3)));
//! let text = list.metrics();
//! assert!(text.contains("peerlb_chosen_total{list=\"api\",peer=\"a:1\"} 1\n"));
//! assert!(text.contains("peerlb_finished_total{list=\"api\",peer=\"a:1\",outcome=\"ok\"} 1\n"));
//! assert!(peerlb::metrics::gather().contains("list=\"api\""));
//! ```

mod exposition;
mod latency;
mod series;

pub(crate) use exposition::{encode, BreakerSample, ListSample, PeerSample};
pub(crate) use series::{ListMetrics, PeerSeries};

/// A text format for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricsFormat {
    /// The Prometheus text format, version 0.0.4 (counters named `…_total` in `# TYPE`).
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 text (`# UNIT` lines, counter families without `_total`, `# EOF`).
    OpenMetrics,
}

impl MetricsFormat {
    /// The HTTP `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            MetricsFormat::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            MetricsFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }
    }
}

/// Every live list's metrics (see [`crate::registry`]), in the Prometheus text format.
pub fn gather() -> String {
    gather_as(MetricsFormat::Prometheus)
}

/// Every live list's metrics in `format`.
pub fn gather_as(format: MetricsFormat) -> String {
    let samples = crate::registry::lists()
        .iter()
        .filter_map(|list| list.metrics_sample())
        .collect();
    encode(samples, format)
}
