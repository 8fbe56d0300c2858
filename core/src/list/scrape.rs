//! A list's metrics sample at scrape time (see [`crate::metrics`]): the records and the
//! tally under the lock for a moment, the series' counters after it.

use std::collections::HashSet;
use std::sync::Arc;

use super::eligibility::Class;
use super::ListShared;
use crate::metrics::{ListSample, PeerSample, PeerSeries};

/// What the lock gives about one record.
struct Row {
    seq: u64,
    series: Arc<PeerSeries>,
    available: bool,
    ejected: bool,
    disabled: bool,
    pending: usize,
}

impl ListShared {
    /// This list's sample, unless it keeps no metrics.
    pub(crate) fn metrics_sample(&self) -> Option<ListSample> {
        let metrics = self.metrics.as_ref()?;
        let mut sample = ListSample {
            name: self.list_name.to_string(),
            ..ListSample::default()
        };
        let mut rows: Vec<Row> = {
            let state = self.lock();
            let tally = &state.tally;
            sample.total = state.peers.len();
            sample.available = tally.offered();
            sample.ejected = tally.ejected;
            sample.disabled = state
                .disabled
                .iter()
                .filter(|id| state.peers.contains_key(*id))
                .count();
            sample.panic = tally.panic;
            state
                .peers
                .iter()
                .filter_map(|(id, slot)| {
                    Some(Row {
                        seq: slot.seq,
                        series: slot.series.clone()?,
                        available: slot.offered,
                        ejected: slot.ejected_until != 0,
                        disabled: slot.class == Class::Disabled
                            || (!state.disabled.is_empty() && state.disabled.contains(id)),
                        pending: slot.peer.as_ref().map_or(0, |p| p.pending()),
                    })
                })
                .collect()
        };
        rows.sort_unstable_by_key(|r| r.seq);
        let listed: HashSet<&crate::PeerId> = rows.iter().map(|r| r.series.id()).collect();
        // Removed peers still finishing requests keep their series until the last one ends.
        let mut departed: Vec<Arc<PeerSeries>> = metrics
            .departed(&listed)
            .into_iter()
            .filter(|s| s.pending() > 0)
            .collect();
        departed.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        let saturated = self
            .breakers
            .as_ref()
            .and_then(|b| b.max_pending_per_peer().map(|limit| (b, limit)))
            .map(|(b, limit)| (b, rows.iter().filter(|r| r.pending >= limit).count()));
        sample.breakers = match saturated {
            Some((b, count)) => Some(b.sample(count)),
            None => self.breakers.as_ref().map(|b| b.sample(0)),
        };
        let peer_labels = metrics.peer_labels();
        let mut peers: Vec<PeerSample> = rows
            .iter()
            .map(|r| PeerSample {
                id: Some(r.series.id().to_string()),
                available: u64::from(r.available),
                ejected: u64::from(r.ejected),
                disabled: u64::from(r.disabled),
                counts: r.series.counts(),
                latency: if peer_labels {
                    r.series.latency()
                } else {
                    Default::default()
                },
            })
            .chain(departed.iter().map(|s| PeerSample {
                id: Some(s.id().to_string()),
                counts: s.counts(),
                latency: if peer_labels {
                    s.latency()
                } else {
                    Default::default()
                },
                ..PeerSample::default()
            }))
            .collect();
        if !peer_labels {
            let mut all = PeerSample {
                latency: metrics.shared_latency().unwrap_or_default(),
                ..PeerSample::default()
            };
            for p in &peers {
                all.available += p.available;
                all.ejected += p.ejected;
                all.disabled += p.disabled;
                all.counts.merge(&p.counts);
            }
            peers = vec![all];
        }
        sample.peers = peers;
        (sample.retries, sample.budget_exhausted) = metrics.retry_counts();
        Some(sample)
    }
}
