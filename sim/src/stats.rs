//! Latency percentiles (nearest rank over every sample, no histogram error) and the
//! millisecond formatting tables use. Shared with the `make demo` example.

/// p50, p99 and p99.9 of a set of latencies, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
}

impl Percentiles {
    /// The percentiles of `samples` (nanoseconds; sorted in place). All zero when empty.
    ///
    /// ```
    /// let mut xs: Vec<u64> = (1..=1000).collect();
    /// let p = peerlb_sim::stats::Percentiles::of(&mut xs);
    /// assert_eq!((p.p50, p.p99, p.p999), (500, 990, 999));
    /// ```
    pub fn of(samples: &mut [u64]) -> Percentiles {
        samples.sort_unstable();
        Percentiles {
            count: samples.len(),
            p50: quantile(samples, 0.5),
            p99: quantile(samples, 0.99),
            p999: quantile(samples, 0.999),
        }
    }
}

/// The nearest-rank `q` quantile (0 < q <= 1) of sorted `samples`; 0 when empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nanoseconds as milliseconds for tables: `12.3 ms`, `0.42 ms`, `1234 ms`.
pub fn fmt_ms(ns: impl Into<u128>) -> String {
    let ms = ns.into() as f64 / 1e6;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_and_edges() {
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[7], 0.999), 7);
        let xs: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&xs, 0.5), 50);
        assert_eq!(quantile(&xs, 0.99), 99);
        assert_eq!(quantile(&xs, 0.999), 100);
        let mut shuffled = vec![5, 1, 4, 2, 3];
        assert_eq!(Percentiles::of(&mut shuffled).p50, 3);
    }

    #[test]
    fn milliseconds_keep_three_figures() {
        assert_eq!(fmt_ms(12_345_678u64), "12.3 ms");
        assert_eq!(fmt_ms(420_000u64), "0.42 ms");
        assert_eq!(fmt_ms(1_234_000_000u64), "1234 ms");
    }
}
