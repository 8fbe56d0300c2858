//! A list under traffic with its admin endpoint open: what `make demo` shows and what the
//! real-Prometheus test scrapes.
//!
//! ```sh
//! cargo run -p peerlb --example serve_metrics -- [--seconds N] [--address ADDR] [--quiet]
//! ```
//!
//! Makes the list `demo-api` (peers `10.0.0.1:80` … `10.0.0.4:80`, `peak-ewma`, circuit
//! breakers), serves the admin endpoint (default `127.0.0.1:0`), prints
//! `admin endpoint: http://…` and runs traffic on two threads: each request takes a
//! latency from its peer (`10.0.0.4:80` is ten times slower) and one in fifty fails. After
//! `--seconds` (default 5; 0 = until standard input closes) it scrapes its own endpoint
//! over HTTP and prints a few of the lines, unless `--quiet`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerlb::admin_http::serve_admin;
use peerlb::{ListOptions, Outcome, PeerList, Request};

const PEERS: [&str; 4] = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"];

fn scrape(address: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).expect("the endpoint accepts");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let seconds: u64 = value("--seconds").map_or(5, |s| s.parse().expect("--seconds N"));
    let address = value("--address").unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let quiet = args.iter().any(|a| a == "--quiet");

    let list = PeerList::new(
        ListOptions::default()
            .name("demo-api")
            .strategy_name("peak-ewma")
            .unwrap()
            .max_pending(64)
            .max_pending_per_peer(16),
    )
    .unwrap();
    list.update(PEERS, None::<&str>).unwrap();
    list.start().unwrap();
    let server = serve_admin(&address).expect("the admin endpoint listens");
    println!("admin endpoint: {}", server.url());
    println!("  metrics:  {}/metrics", server.url());
    println!("  backends: {}/lists/demo-api/backends", server.url());
    std::io::stdout().flush().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            let (list, stop) = (list.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = t;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let Ok(choice) =
                        list.choose(&Request::new().with_timeout(Duration::from_secs(1)))
                    else {
                        continue;
                    };
                    let slow = choice.peer().as_str() == PEERS[3];
                    let micros = 200 + (n * 7919 % 800);
                    let latency = Duration::from_micros(if slow { micros * 10 } else { micros });
                    std::thread::sleep(Duration::from_micros(100));
                    let outcome = if n % 50 == 0 {
                        Outcome::Failure
                    } else {
                        Outcome::Ok
                    };
                    choice.finish(outcome, Some(latency));
                }
            })
        })
        .collect();
    if seconds == 0 {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    } else {
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    if !quiet {
        let text = scrape(server.local_addr());
        println!(
            "scraped {}/metrics ({} lines), a few of them:",
            server.url(),
            text.lines().count()
        );
        for line in text.lines().filter(|l| {
            l.starts_with("peerlb_chosen_total")
                || l.starts_with("peerlb_finished_total{list=\"demo-api\",peer=\"10.0.0.4:80\"")
                || l.starts_with("peerlb_request_duration_seconds_count")
                || l.starts_with("peerlb_available_peers")
        }) {
            println!("  {line}");
        }
    }
}
