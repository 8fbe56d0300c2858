//! peerlb next to tower's power-of-two-choices balancer, in the same run: one op is one
//! pick among 100 always-ready peers plus the end of the request.
//!
//! * tower: `balance::p2c::Balance` over a `ServiceList` of 100 trivial services (each
//!   answers at once with its index), wrapped in `load::PendingRequests` or
//!   `load::PeakEwma`. One op = `poll_ready` (the p2c pick) + `call` + polling the
//!   response future to completion (which drops the load handle: pending count down,
//!   peak-EWMA updated).
//! * peerlb: a running `PeerList` of 100 always-available peers with `two-random-choices`
//!   (p2c on pending counts, like `PendingRequests`) or `peak-ewma` (p2c on peak-EWMA ×
//!   (pending + 1), like `PeakEwma`). One op = `choose` + `finish(Ok, None)`.
//!
//! Both peak-EWMA sides use the same parameters (decay 10 s, default RTT 30 ms, peerlb's
//! defaults) and read the clock at the pick and at the end. One thread only: tower's
//! `Balance` needs `&mut self` (sharing it means a `Buffer` task in front of it).
//!
//! `cargo bench -p peerlb-benches --bench vs_tower`; the summary's comparison table pairs
//! the rows by [`peerlb_benches::TOWER_PAIRS`].

mod shared;

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};
use peerlb_benches::{
    cpu_log_path, peer_ids, peerlb_function, thread_cpu_time, threads_label, CpuLog, Timing,
    TOWER_GROUP, TOWER_PEAK_EWMA, TOWER_PEERS, TOWER_PENDING,
};
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwmaDiscover, PendingRequestsDiscover};
use tower::Service;

/// CPU time beside criterion's wall time, merged into the same log as `choose`'s.
static CPU: CpuLog = CpuLog::new();

/// A backend that is always ready and answers at once with its index.
#[derive(Clone, Copy)]
struct Backend(usize);

impl Service<()> for Backend {
    type Response = usize;
    type Error = Infallible;
    type Future = Ready<Result<usize, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: ()) -> Self::Future {
        ready(Ok(self.0))
    }
}

/// A waker that does nothing: every future here is ready when first polled.
struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

fn backends() -> Vec<Backend> {
    (0..TOWER_PEERS).map(Backend).collect()
}

/// One tower op: the p2c pick, the call, the response (ending the request).
fn tower_op<S>(balance: &mut S, cx: &mut Context<'_>)
where
    S: Service<(), Response = usize>,
    S::Error: std::fmt::Debug,
{
    match balance.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        other => panic!("tower balance not ready: {:?}", other.map(|_| ())),
    }
    let future = pin!(balance.call(()));
    match future.poll(cx) {
        Poll::Ready(Ok(index)) => {
            black_box(index);
        }
        _ => panic!("a trivial backend answers at once"),
    }
}

/// A running list of `TOWER_PEERS` always-available peers.
fn running_list(kind: StrategyKind) -> PeerList {
    let list = PeerList::new(
        ListOptions::default()
            .strategy(kind)
            .shuffle(false)
            .seed(1)
            .capacity(TOWER_PEERS),
    )
    .expect("valid options");
    list.update(peer_ids(TOWER_PEERS), None::<&str>)
        .expect("distinct valid ids");
    list.start().expect("a new list starts");
    list
}

/// One benchmark of `op` on this thread: wall time to criterion, CPU time to the log.
fn bench(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    function: &str,
    mut op: impl FnMut(),
) {
    let parameter = threads_label(1);
    group.bench_function(BenchmarkId::new(function, &parameter), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let cpu_before = thread_cpu_time();
            for _ in 0..iters {
                op();
            }
            let cpu = thread_cpu_time()
                .zip(cpu_before)
                .map(|(b, a)| b.saturating_sub(a));
            let timing = Timing {
                wall: start.elapsed(),
                cpu,
            };
            CPU.record(TOWER_GROUP, function, &parameter, iters, timing);
            timing.wall
        })
    });
}

fn vs_tower(c: &mut Criterion) {
    let mut group = c.benchmark_group(TOWER_GROUP);
    group.throughput(Throughput::Elements(1));
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);

    let mut pending = Balance::new(PendingRequestsDiscover::new(
        ServiceList::new::<()>(backends()),
        CompleteOnResponse::default(),
    ));
    bench(&mut group, TOWER_PENDING, || {
        tower_op(&mut pending, &mut cx)
    });

    let mut ewma = Balance::new(PeakEwmaDiscover::new(
        ServiceList::new::<()>(backends()),
        Duration::from_millis(30),
        Duration::from_secs(10),
        CompleteOnResponse::default(),
    ));
    bench(&mut group, TOWER_PEAK_EWMA, || tower_op(&mut ewma, &mut cx));

    for kind in [StrategyKind::TwoRandomChoices, StrategyKind::PeakEwma] {
        let list = running_list(kind);
        let request = Request::new();
        bench(&mut group, &peerlb_function(kind), || {
            let choice = list.choose(&request).expect("a peer is available");
            black_box(choice.peer());
            choice.finish(Outcome::Ok, None);
        });
        list.stop().expect("the list is running");
    }
    group.finish();

    let path = cpu_log_path();
    if let Err(e) = CPU.save(&path) {
        eprintln!("vs_tower: cannot write {}: {e}", path.display());
    }
}

criterion_group! {
    name = benches;
    config = shared::config();
    targets = vs_tower
}
criterion_main!(benches);
