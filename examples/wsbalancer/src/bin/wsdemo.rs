//! `wsdemo` (`make demo`): 20 WebSocket clients through `wsbalancer` to 3 `wsbackend`
//! processes; one backend is killed 1 s in, and another is failed over by the admin API
//! 2 s in. Prints, per client, the messages sent and received (each once and in order?),
//! the backends it went through, its failovers and disconnects (which must be 0), and the
//! failover gap: from the kill (or the admin call) to the first message relayed by the new
//! backend. Writes the table to `target/demo/wsbalancer.md`; exits non-zero when a message
//! was lost, repeated or reordered, or a client was disconnected.
//!
//! `--send-every-ms N` (default 10) sets how often each client sends; a gap includes up to
//! that much waiting for the client's next message, so a small value measures the
//! balancer's own failover time more closely.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 20;
const RUN_FOR: Duration = Duration::from_secs(3);
const KILL_AT: Duration = Duration::from_millis(1000);
const ADMIN_FAILOVER_AT: Duration = Duration::from_millis(2000);

/// A child process that printed where it listens; killed when dropped.
struct Proc {
    child: Child,
    line: String,
}

impl Proc {
    fn spawn(program: &PathBuf, args: &[&str], stderr: Stdio) -> Proc {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("a first line");
        Proc {
            child,
            line: line.trim().to_owned(),
        }
    }

    fn word(&self, i: usize) -> String {
        self.line
            .split_whitespace()
            .nth(i)
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    sent: u64,
    /// (n, backend, when) of each echo, in arrival order.
    echoes: Vec<(u64, String, Instant)>,
    /// The close code or error that ended the connection, if the balancer ended it.
    disconnected: Option<String>,
}

/// One admin call over plain HTTP/1.1 (the demo's only HTTP client need).
async fn admin(addr: &str, method: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin port");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("admin write");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("admin read");
    response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned())
}

async fn client(url: String, id: usize, seen: Arc<Mutex<Seen>>, stop_at: Instant, every: Duration) {
    let (ws, _) = match tokio_tungstenite::connect_async(format!("{url}/demo")).await {
        Ok(c) => c,
        Err(e) => {
            seen.lock().unwrap().disconnected = Some(format!("connect: {e}"));
            return;
        }
    };
    let (mut tx, mut rx) = ws.split();
    let reader_seen = seen.clone();
    let reader = tokio::spawn(async move {
        while let Some(frame) = rx.next().await {
            match frame {
                Ok(Message::Text(text)) => {
                    let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                    let n = v["n"].as_u64().unwrap_or(u64::MAX);
                    let backend = v["backend"].as_str().unwrap_or("?").to_owned();
                    reader_seen
                        .lock()
                        .unwrap()
                        .echoes
                        .push((n, backend, Instant::now()));
                }
                Ok(Message::Close(frame)) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    if code != 1000 {
                        reader_seen.lock().unwrap().disconnected = Some(format!("closed {code}"));
                    }
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    reader_seen.lock().unwrap().disconnected = Some(format!("error: {e}"));
                    return;
                }
            }
        }
    });
    let mut n = 0u64;
    let mut tick = tokio::time::interval(every);
    while Instant::now() < stop_at {
        tick.tick().await;
        let message = json!({"client": id, "n": n}).to_string();
        if tx.send(Message::Text(message.into())).await.is_err() {
            break;
        }
        n += 1;
        seen.lock().unwrap().sent = n;
    }
    // Every echo, then a normal close.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let done = {
            let s = seen.lock().unwrap();
            s.echoes.len() as u64 >= s.sent || s.disconnected.is_some()
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "done".into(),
        })))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
}

/// min / median / max of some durations, in milliseconds.
fn spread(mut gaps: Vec<Duration>) -> String {
    if gaps.is_empty() {
        return "none".into();
    }
    gaps.sort();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    format!(
        "min {}, median {}, max {} over {} clients",
        ms(gaps[0]),
        ms(gaps[gaps.len() / 2]),
        ms(gaps[gaps.len() - 1]),
        gaps.len()
    )
}

/// The gap each client on `backend` saw: from `at` to its first echo from another backend.
fn gaps(seen: &[Arc<Mutex<Seen>>], backend: &str, at: Instant) -> Vec<Duration> {
    seen.iter()
        .filter_map(|s| {
            let s = s.lock().unwrap();
            let before = s.echoes.iter().rev().find(|e| e.2 <= at)?;
            if before.1 != backend {
                return None;
            }
            let after = s.echoes.iter().find(|e| e.2 > at && e.1 != backend)?;
            Some(after.2 - at)
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let mut every = Duration::from_millis(10);
    for (name, value) in peerlb_wsbalancer::args::pairs() {
        match (name.as_str(), value.parse::<u64>()) {
            ("send-every-ms", Ok(ms)) if ms > 0 => every = Duration::from_millis(ms),
            _ => peerlb_wsbalancer::args::fail(
                &format!("bad option --{name} {value:?}"),
                "usage: wsdemo [--send-every-ms N]",
            ),
        }
    }
    let dir = std::env::current_exe()
        .expect("own path")
        .parent()
        .expect("a directory")
        .to_path_buf();
    let out = PathBuf::from(std::env::var("PEERLB_DEMO_DIR").unwrap_or("target/demo".into()));
    std::fs::create_dir_all(&out).expect("target/demo");
    let backends: Vec<Proc> = ["b1", "b2", "b3"]
        .iter()
        .map(|name| Proc::spawn(&dir.join("wsbackend"), &["--name", name], Stdio::inherit()))
        .collect();
    let addrs: Vec<String> = backends.iter().map(|b| b.word(4)).collect();
    let log = std::fs::File::create(out.join("wsbalancer.log")).expect("log file");
    let mut args = vec!["--stamp", "via=wsbalancer", "--max-message-bytes", "65536"];
    for a in &addrs {
        args.extend(["--backend", a.as_str()]);
    }
    let balancer = Proc::spawn(&dir.join("wsbalancer"), &args, Stdio::from(log));
    let url = balancer.word(3);
    let admin_addr = balancer.word(5).trim_start_matches("http://").to_owned();
    println!(
        "wsbalancer demo: {CLIENTS} clients, one message every {} ms each for {} s, backends b1 {} b2 {} b3 {}",
        every.as_millis(),
        RUN_FOR.as_secs(),
        addrs[0],
        addrs[1],
        addrs[2]
    );

    let start = Instant::now();
    let stop_at = start + RUN_FOR;
    let seen: Vec<Arc<Mutex<Seen>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let tasks: Vec<_> = seen
        .iter()
        .enumerate()
        .map(|(i, s)| tokio::spawn(client(url.clone(), i, s.clone(), stop_at, every)))
        .collect();

    tokio::time::sleep_until((start + KILL_AT).into()).await;
    let mut backends = backends;
    let killed_at = Instant::now();
    let _ = backends[0].child.kill();
    let _ = backends[0].child.wait();
    println!(
        "{:>6.0} ms  killed b1 ({})",
        (killed_at - start).as_secs_f64() * 1000.0,
        addrs[0]
    );

    tokio::time::sleep_until((start + ADMIN_FAILOVER_AT).into()).await;
    let moved_at = Instant::now();
    let answer = admin(
        &admin_addr,
        "POST",
        &format!("/backend/failover/{}", addrs[1]),
    )
    .await;
    println!(
        "{:>6.0} ms  POST /backend/failover/{} -> {answer}",
        (moved_at - start).as_secs_f64() * 1000.0,
        addrs[1]
    );

    tokio::time::sleep_until((stop_at - Duration::from_millis(100)).into()).await;
    let sessions: Value = serde_json::from_str(&admin(&admin_addr, "GET", "/session/list").await)
        .unwrap_or(Value::Null);
    for t in tasks {
        let _ = t.await;
    }

    let mut table = String::from(
        "| client | sent | received | each once, in order | backends | failovers | disconnects |\n|---:|---:|---:|---|---|---:|---:|\n",
    );
    let (mut sent_all, mut received_all, mut disconnects, mut broken, mut failovers_all) =
        (0, 0, 0, 0, 0);
    for (i, s) in seen.iter().enumerate() {
        let s = s.lock().unwrap();
        let ns: Vec<u64> = s.echoes.iter().map(|e| e.0).collect();
        let in_order = ns == (0..s.sent).collect::<Vec<_>>();
        let mut path: Vec<&str> = Vec::new();
        for e in &s.echoes {
            if path.last() != Some(&e.1.as_str()) {
                path.push(&e.1);
            }
        }
        let failovers = path.len().saturating_sub(1);
        let disconnected = usize::from(s.disconnected.is_some());
        sent_all += s.sent;
        received_all += s.echoes.len() as u64;
        disconnects += disconnected;
        failovers_all += failovers;
        broken += usize::from(!in_order);
        if let Some(why) = &s.disconnected {
            eprintln!("client {i} was disconnected: {why}");
        }
        table.push_str(&format!(
            "| {i} | {} | {} | {} | {} | {failovers} | {disconnected} |\n",
            s.sent,
            s.echoes.len(),
            if in_order { "yes" } else { "NO" },
            path.join(" → "),
        ));
    }
    let reconnects: u64 = sessions.as_array().map_or(0, |a| {
        a.iter().filter_map(|s| s["reconnects"].as_u64()).sum()
    });
    let kill_gap = spread(gaps(&seen, "b1", killed_at));
    let move_gap = spread(gaps(&seen, "b2", moved_at));
    let summary = format!(
        "\nall: {sent_all} sent, {received_all} received, {failovers_all} failovers seen by clients \
         ({reconnects} counted by the balancer), {broken} clients with lost/repeated/reordered \
         messages, disconnects: {disconnects}\n\
         failover gap after killing b1 (kill -> first message relayed by the new backend): {kill_gap}\n\
         failover gap after the admin failover of b2 (call -> first message from the new backend): {move_gap}\n\
         (clients send every {} ms, so a gap includes up to that much waiting for the next message)\n",
        every.as_millis()
    );
    print!("\n{table}{summary}");
    let mut file = std::fs::File::create(out.join("wsbalancer.md")).expect("table file");
    let _ = write!(file, "{table}{summary}");
    println!(
        "table: {}, balancer log: {}",
        out.join("wsbalancer.md").display(),
        out.join("wsbalancer.log").display()
    );
    drop(balancer);
    drop(backends);
    if disconnects > 0 || broken > 0 || sent_all != received_all {
        std::process::exit(1);
    }
}
