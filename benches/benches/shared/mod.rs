//! Criterion settings the benchmark files share (criterion is a dev-dependency, so this
//! lives beside the benchmarks rather than in the `peerlb_benches` library).

use std::time::Duration;

use criterion::Criterion;

/// Short enough for `make bench` to finish in a few minutes on 2 cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .without_plots()
}
