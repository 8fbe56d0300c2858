//! The pieces of `make demo` (the `demo` bin): tiny line-based TCP servers that count what
//! they serve, and a client that sends requests through a [`PeerList`] over real TCP.
//!
//! The protocol, one request per connection:
//!
//! ```text
//! client: PING 17\n
//! server: PONG b 17\n      (after the server's delay; "b" is the server's name)
//! ```
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};

/// How long a client or server waits to connect, read or write before calling it a failure
/// (generous, so a loaded CI machine does not turn slowness into test failures).
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A local TCP server on an ephemeral port of 127.0.0.1 that answers `PING n` with
/// `PONG <name> n` after `delay`, one thread per connection, and counts what it served.
///
/// Stopped (and its accept thread joined) on [`Server::stop`] or drop.
pub struct Server {
    name: String,
    addr: SocketAddr,
    delay: Duration,
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1:0 and starts accepting.
    pub fn start(name: &str, delay: Duration) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (name, served, stop) = (name.to_owned(), served.clone(), stop.clone());
            thread::Builder::new()
                .name(format!("server-{name}"))
                .spawn(move || accept_loop(listener, &name, delay, &served, &stop))?
        };
        Ok(Server {
            name: name.to_owned(),
            addr,
            delay,
            served,
            stop,
            accept: Some(accept),
        })
    }

    /// The server's name (it is in every reply).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The peer id to give a list: `127.0.0.1:port`.
    pub fn peer_id(&self) -> String {
        self.addr.to_string()
    }

    /// How long it takes to answer.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// How many requests it has answered so far (counted before the reply is sent).
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// Stops accepting and waits for the accept thread (connections in progress finish on
    /// their own threads).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(accept) = self.accept.take() {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept; it sees the flag and returns.
            let _ = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT);
            let _ = accept.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(
    listener: TcpListener,
    name: &str,
    delay: Duration,
    served: &Arc<AtomicUsize>,
    stop: &AtomicBool,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let (name, served) = (name.to_owned(), served.clone());
        thread::spawn(move || {
            // A client that hangs up early is its own problem; the server carries on.
            let _ = answer(stream, &name, delay, &served);
        });
    }
}

fn answer(stream: TcpStream, name: &str, delay: Duration, served: &AtomicUsize) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new(&stream).take_line(&mut line)?;
    let mut out = &stream;
    let Some(n) = line
        .trim_end()
        .strip_prefix("PING ")
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return writeln!(out, "ERR expected \"PING <number>\"");
    };
    thread::sleep(delay);
    served.fetch_add(1, Ordering::SeqCst);
    writeln!(out, "PONG {name} {n}")
}

/// `read_line` with a length cap, so a client cannot make a server buffer without end.
trait TakeLine {
    fn take_line(self, line: &mut String) -> io::Result<usize>;
}

impl<R: BufRead> TakeLine for R {
    fn take_line(self, line: &mut String) -> io::Result<usize> {
        io::Read::take(self, 256).read_line(line)
    }
}

/// Sends `PING n` to `peer` (`host:port`) over a new TCP connection and returns the
/// server's name from its `PONG`.
pub fn ping(peer: &str, n: u64) -> Result<String, String> {
    let addr: SocketAddr = peer
        .parse()
        .map_err(|e| format!("peer {peer:?} is not an address: {e}"))?;
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("connect {peer}: {e}"))?;
    let io = |e: io::Error| format!("{peer}: {e}");
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    writeln!(&stream, "PING {n}").map_err(io)?;
    let mut line = String::new();
    BufReader::new(&stream).take_line(&mut line).map_err(io)?;
    let reply = line.trim_end();
    let mut words = reply.split(' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("PONG"), Some(name), Some(echo), None) if echo == n.to_string() => {
            Ok(name.to_owned())
        }
        _ => Err(format!("{peer}: unexpected reply {reply:?}")),
    }
}

/// What one strategy's run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The strategy's name.
    pub strategy: String,
    /// Requests each server answered during the run, by the servers' own counters (same
    /// order as the servers given to [`run_strategy`]).
    pub served: Vec<usize>,
    /// Successful replies per server name, as the client saw them (a cross-check).
    pub replies: BTreeMap<String, usize>,
    /// Requests that failed (no peer, connect/read/write error, bad reply).
    pub errors: usize,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl RunReport {
    /// Whether the servers' counts agree with the client's successful replies.
    pub fn counts_agree(&self, servers: &[Server]) -> bool {
        servers
            .iter()
            .zip(&self.served)
            .all(|(s, &n)| self.replies.get(s.name()).copied().unwrap_or(0) == n)
    }
}

/// Sends `requests` requests through a new [`PeerList`] of `kind` over `servers`, from
/// `client_threads` threads at once, each over its own TCP connection; finishes every
/// choice with its outcome and latency. Counts come from the servers.
pub fn run_strategy(
    kind: StrategyKind,
    servers: &[Server],
    requests: usize,
    client_threads: usize,
) -> Result<RunReport, peerlb::Error> {
    let list = PeerList::new(ListOptions::default().strategy(kind).shuffle(false).seed(7))?;
    list.update(servers.iter().map(Server::peer_id), None::<&str>)?;
    list.start()?;
    let before: Vec<usize> = servers.iter().map(Server::served).collect();
    let next = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let samples = Mutex::new(Vec::new());
    let replies = Mutex::new(BTreeMap::new());
    let started = Instant::now();
    thread::scope(|s| {
        for _ in 0..client_threads.max(1) {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    return;
                }
                let failed = |message: String| {
                    errors.fetch_add(1, Ordering::Relaxed);
                    let mut samples = samples.lock().unwrap();
                    if samples.len() < 5 {
                        samples.push(message);
                    }
                };
                let request = Request::new().with_timeout(Duration::from_secs(1));
                let choice = match list.choose(&request) {
                    Ok(choice) => choice,
                    Err(e) => {
                        failed(format!("choose: {e}"));
                        continue;
                    }
                };
                let sent = Instant::now();
                match ping(choice.peer().as_str(), n as u64) {
                    Ok(name) => {
                        choice.finish(Outcome::Ok, Some(sent.elapsed()));
                        *replies.lock().unwrap().entry(name).or_insert(0) += 1;
                    }
                    Err(message) => {
                        choice.finish(Outcome::Failure, Some(sent.elapsed()));
                        failed(message);
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    list.stop()?;
    let replies = replies.into_inner().unwrap();
    // Servers count before replying, so every reply the client got is already counted.
    let served = servers
        .iter()
        .zip(before)
        .map(|(s, b)| s.served() - b)
        .collect();
    Ok(RunReport {
        strategy: kind.as_str().to_owned(),
        served,
        replies,
        errors: errors.into_inner(),
        error_samples: samples.into_inner().unwrap(),
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(n: usize) -> Vec<Server> {
        (0..n)
            .map(|i| Server::start(&format!("s{i}"), Duration::ZERO).unwrap())
            .collect()
    }

    #[test]
    fn round_robin_on_one_thread_splits_evenly_and_servers_count_it() {
        let servers = servers(3);
        let report = run_strategy(StrategyKind::RoundRobin, &servers, 30, 1).unwrap();
        assert_eq!(report.errors, 0, "{:?}", report.error_samples);
        assert_eq!(report.served, [10, 10, 10]);
        assert!(report.counts_agree(&servers));
        // a second run counts only its own requests
        let report = run_strategy(StrategyKind::FewestPending, &servers, 6, 1).unwrap();
        assert_eq!(report.served, [2, 2, 2]);
    }

    #[test]
    fn every_strategy_delivers_every_request_over_several_threads() {
        let servers = servers(3);
        for kind in StrategyKind::ALL {
            let report = run_strategy(kind, &servers, 60, 4).unwrap();
            assert_eq!(report.errors, 0, "{kind}: {:?}", report.error_samples);
            assert_eq!(report.served.iter().sum::<usize>(), 60, "{kind}");
            assert!(report.counts_agree(&servers), "{kind}: {report:?}");
        }
    }

    #[test]
    fn a_stopped_server_shows_up_as_errors_not_as_served() {
        let mut servers = servers(2);
        let dead = servers.pop().unwrap();
        let dead_id = dead.peer_id();
        dead.stop();
        // After stop, nothing accepts on that port any more.
        let err = ping(&dead_id, 1).unwrap_err();
        assert!(err.contains(&dead_id), "{err}");
        let live = &servers[0];
        assert_eq!(ping(&live.peer_id(), 5).unwrap(), "s0");
        assert_eq!(live.served(), 1);
    }

    #[test]
    fn servers_reject_bad_requests_without_counting_them() {
        let server = Server::start("x", Duration::ZERO).unwrap();
        let stream = TcpStream::connect(server.addr()).unwrap();
        writeln!(&stream, "HELLO").unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        assert!(line.starts_with("ERR"), "{line}");
        assert_eq!(server.served(), 0);
        assert!(ping("not-an-address", 1)
            .unwrap_err()
            .contains("not an address"));
    }
}
