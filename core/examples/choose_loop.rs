//! Quick single-thread timing loop: `choose` + `finish` per iteration.
//!
//! `cargo run --release -p peerlb --example choose_loop -- <strategy> <peers> [iterations]`
//! prints nanoseconds per choose+finish. Not a benchmark suite (see `benches/`), just a
//! quick before/after check.

use std::time::Instant;

use peerlb::{ListOptions, Outcome, PeerList, PeerSpec, Request};

fn main() {
    let mut args = std::env::args().skip(1);
    let strategy = args.next().unwrap_or_else(|| "round-robin".into());
    let peers: usize = args.next().map_or(10, |s| s.parse().expect("peers"));
    let iterations: usize = args
        .next()
        .map_or(1_000_000, |s| s.parse().expect("iterations"));
    let list = PeerList::new(
        ListOptions::default()
            .strategy_name(&strategy)
            .expect("strategy")
            .seed(1),
    )
    .expect("list");
    let specs: Vec<PeerSpec> = (0..peers)
        .map(|i| {
            PeerSpec::weighted(
                format!("10.0.{}.{}:80", i / 256, i % 256),
                1 + (i % 5) as u32,
            )
        })
        .collect();
    list.update(specs, None::<&str>).expect("update");
    list.start().expect("start");
    let request = Request::new();
    for _ in 0..iterations / 10 {
        list.choose(&request).unwrap().finish(Outcome::Ok, None);
    }
    let t = Instant::now();
    for _ in 0..iterations {
        list.choose(&request).unwrap().finish(Outcome::Ok, None);
    }
    let ns = t.elapsed().as_nanos() as f64 / iterations as f64;
    println!("{strategy} peers={peers}: {ns:.1} ns per choose+finish");
}
