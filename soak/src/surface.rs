//! A surface under soak: one peer list fed by the file and DNS updaters, client workers
//! sending requests through its retry helper at a steady rate, and the commands the fault
//! schedule sends it. The Rust surface runs in the harness's process; Python and Node run
//! `soak/drivers/driver.{py,js}` as child processes that speak the same commands as JSON
//! lines (see `soak/README.md`).
//!
//! Every surface writes what it saw to its log, one line each, in the order it saw it:
//! `A <unix ms> <peer> ok|fail` for every attempt and `E <unix ms> <kind> <peer>` for every
//! event its subscriber received. The harness checks the invariants on those lines.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peerlb::retry::{Attempt, RetryPolicy};
use peerlb::updater::{Binding, DnsRecord, DnsUpdater, FileUpdater};
use peerlb::{EjectionPolicy, ErrorCode, ListOptions, PeerList, Request, Subscription};
use serde_json::{json, Value};

/// What every surface is given.
#[derive(Clone)]
pub struct Config {
    pub file: String,
    pub dns: SocketAddr,
    pub dns_name: String,
    pub log: String,
    pub strategy: String,
    pub workers: usize,
    pub rate_per_worker: u32,
    pub ejection_failures: u32,
}

impl Config {
    pub fn to_json(&self) -> Value {
        json!({
            "file": self.file,
            "dns": self.dns.to_string(),
            "dns_name": self.dns_name,
            "log": self.log,
            "strategy": self.strategy,
            "workers": self.workers,
            "rate": self.rate_per_worker,
            "ejection": {
                "failures": self.ejection_failures,
                "base_ms": EJECTION_BASE_MS,
                "max_ms": EJECTION_MAX_MS,
                "max_percent": 50,
                "panic_percent": 50,
            },
            "file_poll_ms": 100,
            "dns_min_interval_ms": 200,
            "dns_empty_threshold": 3,
            "max_attempts": MAX_ATTEMPTS,
            "retry_timeout_ms": 5000,
            "request_timeout_ms": 1000,
            "choose_timeout_ms": 1000,
        })
    }
}

pub const EJECTION_BASE_MS: u64 = 2000;
pub const EJECTION_MAX_MS: u64 = 8000;
pub const MAX_ATTEMPTS: u32 = 4;

/// One surface as the harness drives it.
pub trait Surface {
    fn name(&self) -> &str;
    /// Its process (the harness's own for Rust).
    fn pid(&self) -> u32;
    /// Sends a command; its reply.
    fn command(&mut self, cmd: Value) -> Value;
    /// After `quit`: how its process ended.
    fn exit_status(&mut self) -> String {
        "in process".into()
    }
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ---- child processes (Python, Node) ----------------------------------------------------

/// A driver process speaking JSON lines on its standard input and output.
pub struct ProcessSurface {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ProcessSurface {
    /// Starts `program args... <config JSON>` and waits for its `{"ready": true}`.
    pub fn start(name: &str, program: &str, args: &[String], config: &Config) -> ProcessSurface {
        let mut child = Command::new(program)
            .args(args)
            .arg(config.to_json().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {name} driver ({program}): {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut surface = ProcessSurface {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
        };
        let ready = surface.read();
        assert_eq!(ready["ready"], true, "{name} driver did not start: {ready}");
        surface
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => json!({"dead": true}),
            Ok(_) => serde_json::from_str(&line)
                .unwrap_or_else(|e| json!({"garbled": line.trim(), "error": e.to_string()})),
        }
    }
}

impl Surface for ProcessSurface {
    fn name(&self) -> &str {
        &self.name
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exit_status(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) if s.success() => return "exit 0".into(),
                Ok(Some(s)) => return format!("{s}"),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Ok(None) => {
                    let _ = self.child.kill();
                    return "still running 10 s after quit (killed)".into();
                }
                Err(e) => return format!("wait failed: {e}"),
            }
        }
    }

    fn command(&mut self, cmd: Value) -> Value {
        if writeln!(self.stdin, "{cmd}")
            .and_then(|_| self.stdin.flush())
            .is_err()
        {
            return json!({"dead": true});
        }
        self.read()
    }
}

impl Drop for ProcessSurface {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---- the Rust surface, in this process -------------------------------------------------

/// Panic messages of the subscriber that throws on purpose.
pub const THROWING: &str = "soak: a subscriber that throws on purpose";

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    ok: AtomicU64,
    caller_errors: AtomicU64,
    expected_errors: AtomicU64,
    inflight: AtomicU64,
}

struct Shared {
    list: PeerList,
    log: Mutex<BufWriter<File>>,
    counters: Counters,
    /// Set while the harness has the list stopped (and shortly after it starts again).
    stopped_since: Mutex<Option<Instant>>,
    started_at: Mutex<Instant>,
    problems: Mutex<Vec<String>>,
    quit: AtomicBool,
}

impl Shared {
    fn log(&self, line: String) {
        let mut log = self.log.lock().unwrap();
        let _ = writeln!(log, "{line}");
    }
}

pub struct RustSurface {
    shared: Arc<Shared>,
    workers: Vec<thread::JoinHandle<()>>,
    bindings: Vec<Binding>,
    _events: Subscription,
    throwing: Option<Subscription>,
}

impl RustSurface {
    pub fn start(config: &Config) -> RustSurface {
        let ejection = EjectionPolicy {
            consecutive_failures: config.ejection_failures,
            base_time: Duration::from_millis(EJECTION_BASE_MS),
            max_time: Duration::from_millis(EJECTION_MAX_MS),
            max_percent: 50,
            panic_threshold_percent: 50,
        };
        let list = PeerList::new(
            ListOptions::default()
                .strategy_name(&config.strategy)
                .expect("a strategy")
                .ejection(Some(ejection)),
        )
        .expect("a list");
        let log = BufWriter::new(File::create(&config.log).expect("the Rust surface's log"));
        let shared = Arc::new(Shared {
            list: list.clone(),
            log: Mutex::new(log),
            counters: Counters::default(),
            stopped_since: Mutex::new(None),
            started_at: Mutex::new(Instant::now()),
            problems: Mutex::new(Vec::new()),
            quit: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&shared);
        let events = list.subscribe(move |e| {
            if let Some(s) = weak.upgrade() {
                s.log(format!("E {} {} {}", unix_ms(), e.kind, e.peer));
            }
        });
        let file = FileUpdater::new(&config.file)
            .poll_interval(Duration::from_millis(100))
            .bind(&list);
        let dns = DnsUpdater::new(&config.dns_name, DnsRecord::Srv)
            .expect("a DNS name")
            .nameserver(config.dns)
            .min_interval(Duration::from_millis(200))
            .max_interval(Duration::from_millis(1000))
            .timeout(Duration::from_millis(500))
            .empty_threshold(3)
            .bind(&list);
        list.start().expect("the list starts");
        file.start().expect("the file updater starts");
        dns.start().expect("the DNS updater starts");
        let workers = (0..config.workers)
            .map(|w| {
                let shared = shared.clone();
                let rate = config.rate_per_worker;
                thread::spawn(move || client(&shared, w, rate))
            })
            .collect();
        RustSurface {
            shared,
            workers,
            bindings: vec![file, dns],
            _events: events,
            throwing: None,
        }
    }

    fn report(&self) -> Value {
        let c = &self.shared.counters;
        let info = self.shared.list.introspect();
        let pending: usize = info.peers.iter().map(|p| p.pending).sum();
        self.shared.log.lock().unwrap().flush().ok();
        json!({
            "requests": c.requests.load(Ordering::Relaxed),
            "ok": c.ok.load(Ordering::Relaxed),
            "caller_errors": c.caller_errors.load(Ordering::Relaxed),
            "expected_errors": c.expected_errors.load(Ordering::Relaxed),
            "inflight": c.inflight.load(Ordering::Relaxed),
            "pending": pending,
            "panic": info.panic,
            "peers": info.total,
            "problems": self.shared.problems.lock().unwrap().clone(),
        })
    }
}

/// One client worker: a request every `1/rate` s, each through the retry helper.
fn client(shared: &Shared, worker: usize, rate: u32) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let policy = RetryPolicy::new(MAX_ATTEMPTS).timeout(Duration::from_secs(5));
    let mut http = HttpClient::default();
    let mut next = Instant::now() + interval.mul_f64(worker as f64 / 4.0);
    while !shared.quit.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        next += interval;
        if next + interval * 10 < Instant::now() {
            next = Instant::now(); // far behind (a stall): do not burst
        }
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        shared.counters.inflight.fetch_add(1, Ordering::Relaxed);
        let request = Request::new().with_timeout(Duration::from_millis(1000));
        let result = peerlb::retry::call(&shared.list, &request, &policy, |peer| {
            let t = unix_ms();
            let outcome = http.get(peer.as_str());
            shared.log(format!(
                "A {t} {peer} {}",
                if outcome.is_ok() { "ok" } else { "fail" }
            ));
            outcome.map_err(Attempt::Failure)
        });
        shared.counters.inflight.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                shared.counters.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let stopped = shared.stopped_since.lock().unwrap().is_some()
                    || shared.started_at.lock().unwrap().elapsed() < Duration::from_millis(200);
                if stopped && e.code() == ErrorCode::NotStarted {
                    shared
                        .counters
                        .expected_errors
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    shared
                        .counters
                        .caller_errors
                        .fetch_add(1, Ordering::Relaxed);
                    let mut problems = shared.problems.lock().unwrap();
                    if problems.len() < 20 {
                        problems.push(format!("caller error: {} ({e})", e.code()));
                    }
                }
            }
        }
    }
}

impl Surface for RustSurface {
    fn name(&self) -> &str {
        "rust"
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn command(&mut self, cmd: Value) -> Value {
        let list = &self.shared.list;
        let reply = |r: peerlb::Result<()>| match r {
            Ok(()) => json!({"ok": true}),
            Err(e) => json!({"ok": false, "error": format!("{}: {e}", e.code())}),
        };
        match cmd["cmd"].as_str().unwrap_or("") {
            "admin" => {
                let peer = cmd["peer"].as_str().unwrap_or("");
                let op = cmd["action"].as_str().unwrap_or("").parse();
                match op {
                    Ok(op) => reply(list.admin(op, peer).map(|_| ())),
                    Err(e) => reply(Err(e)),
                }
            }
            "stop" => {
                *self.shared.stopped_since.lock().unwrap() = Some(Instant::now());
                reply(list.stop())
            }
            "start" => {
                let r = list.start();
                *self.shared.started_at.lock().unwrap() = Instant::now();
                *self.shared.stopped_since.lock().unwrap() = None;
                reply(r)
            }
            "throwing" => {
                self.throwing = if cmd["on"] == true {
                    Some(list.subscribe(|_| std::panic::panic_any(THROWING)))
                } else {
                    None
                };
                json!({"ok": true})
            }
            "report" => self.report(),
            "quit" => {
                self.shared.quit.store(true, Ordering::Relaxed);
                for w in self.workers.drain(..) {
                    if w.join().is_err() {
                        self.shared
                            .problems
                            .lock()
                            .unwrap()
                            .push("a client worker panicked".into());
                    }
                }
                for b in &self.bindings {
                    let _ = b.stop();
                }
                let mut report = self.report();
                report["final"] = json!(true);
                report
            }
            other => json!({"ok": false, "error": format!("unknown command {other:?}")}),
        }
    }
}

// ---- a small HTTP/1.1 client ----------------------------------------------------------

/// Keep-alive connections per peer; a request either gets a 200 or fails.
#[derive(Default)]
pub struct HttpClient {
    connections: HashMap<String, BufReader<TcpStream>>,
}

impl HttpClient {
    pub fn get(&mut self, peer: &str) -> Result<(), String> {
        let fresh = !self.connections.contains_key(peer);
        let result = match self.try_get(peer) {
            // A kept-alive connection the backend closed meanwhile: one more try on a new
            // one (what HTTP clients do).
            Err(_) if !fresh => {
                self.connections.remove(peer);
                self.try_get(peer)
            }
            other => other,
        };
        match result {
            Ok(200) => Ok(()),
            Ok(status) => Err(format!("{peer} answered {status}")),
            Err(e) => {
                self.connections.remove(peer);
                Err(e)
            }
        }
    }

    /// One request: the status, or what went wrong on the connection.
    fn try_get(&mut self, peer: &str) -> Result<u16, String> {
        if !self.connections.contains_key(peer) {
            let addr: SocketAddr = peer.parse().map_err(|e| format!("{peer}: {e}"))?;
            let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                .map_err(|e| format!("connect {peer}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(1))).ok();
            s.set_write_timeout(Some(Duration::from_secs(1))).ok();
            s.set_nodelay(true).ok();
            self.connections.insert(peer.to_owned(), BufReader::new(s));
        }
        let conn = self.connections.get_mut(peer).unwrap();
        conn.get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n")
            .map_err(|e| format!("write {peer}: {e}"))?;
        let mut status = String::new();
        if conn
            .read_line(&mut status)
            .map_err(|e| format!("read {peer}: {e}"))?
            == 0
        {
            return Err(format!("{peer} closed the connection"));
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if conn
                .read_line(&mut header)
                .map_err(|e| format!("read {peer}: {e}"))?
                == 0
            {
                return Err(format!("{peer} closed the connection"));
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body)
            .map_err(|e| format!("read {peer}: {e}"))?;
        status
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{peer}: bad status line {:?}", status.trim_end()))
    }
}
