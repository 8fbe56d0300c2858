//! choose+finish on the Rust API, the twin of `tests/c/bench.c` (same list, same loop), for
//! `make bench-c`. Prints `RESULT <strategy> <threads> <ns per choose+finish>` lines (best of
//! 5 runs), and with `--ffi` runs the loop through the C entry points called from Rust.

use std::time::{Duration, Instant};

use peerlb::{ListOptions, Outcome, PeerList, Request};
use peerlb_ffi::*;

fn list(strategy: &str) -> PeerList {
    let list = PeerList::new(
        ListOptions::default()
            .strategy_name(strategy)
            .unwrap()
            .seed(1),
    )
    .unwrap();
    let ids: Vec<String> = (1..=8).map(|i| format!("10.0.0.{i}:80")).collect();
    list.update(ids, None::<&str>).unwrap();
    list.start().unwrap();
    list
}

fn rust_loop(list: &PeerList, n: u64) {
    for _ in 0..n {
        let req = Request::new().with_timeout(Duration::from_millis(1000));
        let choice = list.choose(&req).unwrap();
        choice.finish(Outcome::Ok, Some(Duration::from_micros(100)));
    }
}

fn ffi_loop(list: *const peerlb_list, n: u64) {
    let req = peerlb_request {
        timeout_ms: 1000,
        shard_key: std::ptr::null(),
        shard_key_len: 0,
    };
    for _ in 0..n {
        let mut c = std::mem::MaybeUninit::<peerlb_choice>::uninit();
        // SAFETY: a live list and valid pointers.
        unsafe {
            assert_eq!(
                peerlb_list_choose(list, &req, c.as_mut_ptr()),
                peerlb_status::PEERLB_OK
            );
            let mut c = c.assume_init();
            assert_eq!(
                peerlb_choice_finish(&mut c, PEERLB_OUTCOME_OK, 100),
                peerlb_status::PEERLB_OK
            );
        }
    }
}

fn best_of_5(threads: u64, n: u64, f: impl Fn(u64) + Sync) -> f64 {
    (0..5)
        .map(|_| {
            let t0 = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| f(n));
                }
            });
            t0.elapsed().as_nanos() as f64 / (n * threads) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

struct SendPtr(*mut peerlb_list);
// SAFETY: lists are thread-safe (see peerlb_list's docs).
unsafe impl Sync for SendPtr {}

impl SendPtr {
    fn get(&self) -> *mut peerlb_list {
        self.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ffi = args.iter().any(|a| a == "--ffi");
    let n: u64 = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // PEERLB_BENCH_ONLY=<strategy> runs just that strategy on one thread (for callgrind).
    let only = std::env::var("PEERLB_BENCH_ONLY").ok();
    for strategy in [
        "round-robin",
        "random",
        "fewest-pending",
        "two-random-choices",
    ] {
        if only.as_deref().is_some_and(|o| o != strategy) {
            continue;
        }
        let thread_counts: &[u64] = if only.is_some() { &[1] } else { &[1, 2] };
        for &threads in thread_counts {
            let per_thread = n / threads;
            let ns = if ffi {
                let mut raw = std::ptr::null_mut();
                let name = std::ffi::CString::new(strategy).unwrap();
                let mut opts = std::ptr::null_mut();
                // SAFETY: valid pointers throughout; freed below.
                unsafe {
                    peerlb_list_options_new(&mut opts);
                    peerlb_list_options_set_strategy(opts, name.as_ptr());
                    peerlb_list_options_set_seed(opts, 1);
                    peerlb_list_new(opts, std::ptr::null(), &mut raw);
                    peerlb_list_options_free(opts);
                }
                let ids: Vec<String> = (1..=8).map(|i| format!("10.0.0.{i}:80")).collect();
                let specs: Vec<peerlb_peer_spec> = ids
                    .iter()
                    .map(|id| peerlb_peer_spec {
                        id: id.as_ptr().cast(),
                        id_len: id.len(),
                        weight: 1,
                    })
                    .collect();
                // SAFETY: as above.
                unsafe {
                    peerlb_list_update(raw, specs.as_ptr(), specs.len(), std::ptr::null(), 0);
                    peerlb_list_start(raw);
                }
                let ptr = SendPtr(raw);
                let ns = best_of_5(threads, per_thread, |k| ffi_loop(ptr.get(), k));
                // SAFETY: no thread uses it any more.
                unsafe { peerlb_list_free(raw) };
                ns
            } else {
                let l = list(strategy);
                best_of_5(threads, per_thread, |k| rust_loop(&l, k))
            };
            println!("RESULT {strategy} {threads} {ns:.1}");
        }
    }
}
