//! The tower layer's cost per request: hyper-util's legacy `Client` sending directly,
//! against the same client wrapped in `peerlb::tower::BalanceLayer`, against the same local
//! keep-alive HTTP/1.1 servers, in the same run (the Rust row of `make bench-integrations`;
//! the Python and Node ones are `bindings/python/bench/bench_http_clients.py` and
//! `bindings/node/bench/http_clients.js`, whose method this follows).
//!
//! ```text
//! cargo bench -p peerlb-benches --bench tower_http -- [--out target/bench/rust-http.md]
//!     [--requests N] [--rounds R]
//! ```
//!
//! Each request is a GET of a 2-byte body on a reused connection, awaited one after the
//! other on a current-thread tokio runtime, its body read to the end. The servers run in
//! other processes (this executable again, with `--serve`), one per peer; the balanced
//! client goes to `http://svc.test/` over a round-robin list of both, and the plain one
//! alternates between their own URLs in the same order, so that both variants make the same
//! connections and wake the same processes. Rounds alternate the variants; each variant's
//! number is the median over rounds of the mean per request in a round, the overhead the
//! difference between the medians, and its ratio to the plain client.
//!
//! Two rows: wall time per request, and this process's CPU time per request (every thread:
//! the client's, the layer's, the list's own), what the client itself spends.
//! `make bench-integrations` runs it on one CPU (taskset): unpinned, on a busy machine, the
//! wall time of a loopback round trip mostly measured how soon the scheduler ran the
//! server's thread, which stayed 3-8x slower for one variant or the other for a whole run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use peerlb::tower::{BalanceLayer, BoxError};
use peerlb::{ListOptions, PeerList};
use tower::{Layer, Service, ServiceExt};

/// What `--serve` answers to every request: 200 with a 2-byte body, kept alive.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// The `--serve` process: an HTTP/1.1 server on 127.0.0.1 (a thread per connection) that
/// prints its port and answers every request with [`RESPONSE`] until it is killed.
fn serve() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    println!("{}", listener.local_addr().expect("local address").port());
    std::io::stdout().flush().expect("stdout");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || serve_connection(stream));
    }
}

/// Answers the requests of one connection (GETs without bodies) until the client closes it.
fn serve_connection(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if stream.write_all(RESPONSE).is_err() {
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Starts a `--serve` process and reads its `127.0.0.1:port`.
fn start_server() -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("this executable"))
        .arg("--serve")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start a server process");
    let mut port = String::new();
    BufReader::new(child.stdout.take().expect("its stdout"))
        .read_line(&mut port)
        .expect("its port");
    (child, format!("127.0.0.1:{}", port.trim()))
}

/// This process's CPU time (all threads) in seconds.
fn process_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// One variant's samples: wall and CPU time per request, in µs, one per round.
#[derive(Default)]
struct Samples {
    wall_us: Vec<f64>,
    cpu_us: Vec<f64>,
}

/// Sends `n` GETs through `service`, one after the other, to `urls[0]`, `urls[1]`, ...
/// in turn, reading each body; records the wall and CPU time per request in `samples`
/// when given.
async fn run<S>(
    service: &mut S,
    urls: &[String],
    n: usize,
    samples: Option<&mut Samples>,
) -> Result<(), BoxError>
where
    S: Service<http::Request<Empty<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
    S::Error: Into<BoxError>,
{
    let (t0, cpu0) = (Instant::now(), process_cpu_seconds());
    for i in 0..n {
        let request = http::Request::get(&urls[i % urls.len()]).body(Empty::new())?;
        let response = service
            .ready()
            .await
            .map_err(Into::into)?
            .call(request)
            .await
            .map_err(Into::into)?;
        let body = response.into_body().collect().await?.to_bytes();
        if body.as_ref() != b"ok" {
            return Err(format!("unexpected body {body:?}").into());
        }
    }
    if let Some(samples) = samples {
        let per_request = 1e6 / n as f64;
        samples
            .wall_us
            .push(t0.elapsed().as_secs_f64() * per_request);
        samples
            .cpu_us
            .push((process_cpu_seconds() - cpu0) * per_request);
    }
    Ok(())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The value after `--name` on the command line, if any.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == &format!("--{name}"))?;
    args.get(i + 1).cloned()
}

fn main() -> Result<(), BoxError> {
    if std::env::args().any(|a| a == "--serve") {
        serve();
        return Ok(());
    }
    let requests: usize = arg("requests").map_or(Ok(2000), |v| v.parse())?;
    let rounds: usize = arg("rounds").map_or(Ok(7), |v| v.parse())?;
    let out = arg("out");

    let (mut servers, peers): (Vec<Child>, Vec<String>) = (0..2).map(|_| start_server()).unzip();
    let direct: Vec<String> = peers.iter().map(|p| format!("http://{p}/")).collect();
    let service = ["http://svc.test/".to_string()];
    let list = PeerList::new(
        ListOptions::default()
            .strategy_name("round-robin")?
            .shuffle(false),
    )?;
    list.update(peers.iter().map(String::as_str), None::<&str>)?;
    list.start()?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let samples = runtime.block_on(async {
        let mut plain = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let mut balanced = BalanceLayer::new(list.clone())
            .layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
        // Warm: connections made, pools filled.
        run(&mut plain, &direct, 100, None).await?;
        run(&mut balanced, &service, 100, None).await?;
        let (mut plain_samples, mut balanced_samples) = (Samples::default(), Samples::default());
        for _ in 0..rounds {
            run(&mut plain, &direct, requests, Some(&mut plain_samples)).await?;
            run(
                &mut balanced,
                &service,
                requests,
                Some(&mut balanced_samples),
            )
            .await?;
        }
        Ok::<_, BoxError>((plain_samples, balanced_samples))
    });
    list.stop()?;
    for server in &mut servers {
        let _ = server.kill();
        let _ = server.wait();
    }
    let (plain, balanced) = samples?;

    let row = |what: &str, plain_us: f64, balanced_us: f64| {
        format!(
            "| {what} | {plain_us:.1} | {balanced_us:.1} | {:+.1} | {:.2}× |\n",
            balanced_us - plain_us,
            balanced_us / plain_us
        )
    };
    let report = format!(
        "### Rust HTTP integration: cost per request (hyper-util 0.1 legacy client, tokio current-thread runtime)\n\
         \n\
         GET of 2 bytes over kept-alive connections to {servers} local HTTP/1.1 servers (other \
         processes; both variants alternate between them); median of {rounds} rounds of \
         {requests} requests, variants alternating; \
         `cargo bench -p peerlb-benches --bench tower_http`.\n\
         \n\
         | client | without peerlb (µs/request) | with peerlb | overhead (µs) | ratio |\n\
         |---|---:|---:|---:|---:|\n\
         {}{}",
        row(
            "`hyper_util::client::legacy::Client` / `peerlb::tower::BalanceLayer`",
            median(plain.wall_us),
            median(balanced.wall_us)
        ),
        row(
            "the same, this process's CPU time per request",
            median(plain.cpu_us),
            median(balanced.cpu_us)
        ),
        servers = peers.len(),
    );
    print!("{report}");
    if let Some(out) = out {
        std::fs::write(out, report)?;
    }
    Ok(())
}
