//! Times keyed lookups of the hash strategies at 1024 peers (a quick timing loop; the
//! benchmark suite proper lives in `benches/`).
//!
//! `cargo run --release -p peerlb --example hash_lookup [peers]`

use std::hint::black_box;
use std::time::Instant;

use peerlb::strategy::StrategyConfig;
use peerlb::{ListOptions, Peer, PeerId, PeerList, Request};

fn time_ns(iters: usize, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..iters / 10 {
        f(i);
    }
    let t = Instant::now();
    for i in 0..iters {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let ids: Vec<String> = (0..n)
        .map(|i| format!("10.{}.{}.{}:8080", i / 65536, (i / 256) % 256, i % 256))
        .collect();
    let keys: Vec<String> = (0..4096).map(|i| format!("user:{}", i * 7919)).collect();
    let iters = 2_000_000;
    println!(
        "{n} peers, {} distinct keys, {iters} lookups each",
        keys.len()
    );
    println!(
        "{:<34} {:>12} {:>14} {:>16}",
        "strategy", "build ms", "strategy ns", "PeerList ns"
    );
    for name in [
        "hash-ring",
        "hash-ring:fast",
        "hash-ring:fast?bounded=1.25",
        "maglev",
    ] {
        let config: StrategyConfig = name.parse().unwrap();
        let s = config.build(None, &peerlb::clock::Clock::real());
        let t = Instant::now();
        for id in &ids {
            s.add(&Peer::detached(PeerId::new(id).unwrap(), 1));
        }
        // Adds only record; the first keyed choose builds the table.
        black_box(s.choose(&Request::new().with_shard_key(b"warm-up")));
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        let direct = time_ns(iters, |i| {
            let k = keys[i & 4095].as_bytes();
            black_box(s.choose(&Request::new().with_shard_key(k)));
        });
        let list = PeerList::new(ListOptions::default().strategy_config(config)).unwrap();
        list.update(ids.iter(), None::<&str>).unwrap();
        list.start().unwrap();
        let through_list = time_ns(iters, |i| {
            let k = keys[i & 4095].as_bytes();
            black_box(list.choose(&Request::new().with_shard_key(k)).unwrap());
        });
        println!("{name:<34} {build_ms:>12.1} {direct:>14.1} {through_list:>16.1}");
    }
    // The hash alone, for reference.
    let md5 = time_ns(iters, |i| {
        black_box(md5::compute(keys[i & 4095].as_bytes()));
    });
    let xxh = time_ns(iters, |i| {
        black_box(xxhash_rust::xxh3::xxh3_64(keys[i & 4095].as_bytes()));
    });
    println!("hash only: md5 {md5:.1} ns, xxh3 {xxh:.1} ns");

    // Key movement when one of N peers leaves or one joins (ideal: 1/N and 1/(N+1)).
    let keys: Vec<String> = (0..100_000).map(|i| format!("k{i}")).collect();
    println!("\nkeys moved (of {}), ideal 1/N and 1/(N+1):", keys.len());
    for name in [
        "hash-ring",
        "hash-ring:fast",
        "maglev",
        "maglev?table=655373",
    ] {
        for n in [10usize, 100, 1000] {
            let config: StrategyConfig = name.parse().unwrap();
            let s = config.build(None, &peerlb::clock::Clock::real());
            let ps: Vec<_> = (0..=n)
                .map(|i| {
                    Peer::detached(
                        PeerId::new(format!("10.9.{}.{}:80", i / 256, i % 256)).unwrap(),
                        1,
                    )
                })
                .collect();
            for p in &ps[..n] {
                s.add(p);
            }
            let owners = |s: &dyn peerlb::Strategy| -> Vec<String> {
                keys.iter()
                    .map(|k| {
                        s.choose(&Request::new().with_shard_key(k.as_bytes()))
                            .unwrap()
                            .peer()
                            .id()
                            .to_string()
                    })
                    .collect()
            };
            let before = owners(&*s);
            s.add(&ps[n]);
            let added = owners(&*s);
            s.remove(&ps[n]);
            s.remove(&ps[n / 2]);
            let removed = owners(&*s);
            let frac = |a: &[String], b: &[String]| {
                a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
            };
            println!(
                "{name:<20} N={n:<5} remove 1: {:.4} (ideal {:.4})   add 1: {:.4} (ideal {:.4})",
                frac(&before, &removed),
                1.0 / n as f64,
                frac(&before, &added),
                1.0 / (n + 1) as f64
            );
        }
    }
}
