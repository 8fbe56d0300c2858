//! Measures how long the `http-probe` and `grpc-health` transports take to notice a server
//! turning unhealthy (503 / NOT_SERVING → `unavailable`) and healthy again (→
//! `available`), against the real flipping servers of `tests/health/` (Python; the gRPC
//! one needs `grpcio-health-checking`). Times run from the flip to the list's status.
//!
//! ```sh
//! cargo run --release -p peerlb --features grpc-health --example probe_detect -- \
//!     [spec] [trials] [python]
//! ```
//!
//! `spec` starts with `http-probe` or `grpc-health` (default `http-probe`); the server is
//! chosen by it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peerlb::{transport_from_spec, ConnectionStatus, ListOptions, PeerList};

fn wait(list: &PeerList, id: &str, want: ConnectionStatus) -> Duration {
    let t0 = Instant::now();
    while list.peer_status(id).unwrap().connection_status != want {
        assert!(t0.elapsed() < Duration::from_secs(60), "never {want:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    t0.elapsed()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let spec = args.next().unwrap_or_else(|| "http-probe".to_owned());
    let trials: usize = args.next().map_or(5, |t| t.parse().expect("trials"));
    let python = args.next().unwrap_or_else(|| "python3".to_owned());
    let script = if spec.starts_with("grpc-health") {
        "flip_grpc.py"
    } else {
        "flip_http.py"
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/health")
        .join(script);
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("port ")
        .expect("port")
        .parse()
        .unwrap();
    let mut command = |c: &str| {
        writeln!(stdin, "{c}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
    };
    let id = format!("127.0.0.1:{port}");
    let list = PeerList::new(ListOptions::default().transport(transport_from_spec(&spec).unwrap()))
        .unwrap();
    list.update([id.as_str()], None::<&str>).unwrap();
    list.start().unwrap();
    wait(&list, &id, ConnectionStatus::Available);
    let (mut downs, mut ups) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        command("down");
        downs.push(wait(&list, &id, ConnectionStatus::Unavailable));
        command("up");
        ups.push(wait(&list, &id, ConnectionStatus::Available));
    }
    let show = |v: &[Duration]| {
        let ms: Vec<String> = v.iter().map(|d| format!("{}", d.as_millis())).collect();
        let max = v.iter().max().unwrap().as_millis();
        format!("[{}] ms (max {max} ms)", ms.join(", "))
    };
    println!("{spec}: {trials} trials");
    println!("  unhealthy -> unavailable: {}", show(&downs));
    println!("  healthy   -> available:   {}", show(&ups));
    command("quit");
    let _ = child.wait();
}
