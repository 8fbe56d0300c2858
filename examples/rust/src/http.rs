//! A small HTTP/1.1 backend and client over std's TCP, just enough for the demo: `GET`
//! with keep-alive, `Content-Length` bodies, no chunking, no TLS.
//!
//! A [`Backend`] answers every `GET` with `200 OK` and its name as the body after a delay
//! (drawn from a latency distribution), one thread per connection, and counts what it
//! served. [`Backend::kill`] makes it vanish like a crashed process: the port stops
//! accepting (connections are refused) and open connections are reset.
//!
//! A [`Client`] keeps one keep-alive connection per backend and reconnects after an error.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use peerlb_sim::model::Latency;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// How long a client waits to connect, or for a response, before calling it a failure
/// (generous: a loaded CI machine must not turn slowness into failures).
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest request or response head either side accepts.
const MAX_HEAD: u64 = 8 * 1024;

/// A local HTTP/1.1 server on an ephemeral port of 127.0.0.1 (see the module docs).
/// Killed and joined on [`Backend::kill`] or drop.
pub struct Backend {
    name: String,
    addr: SocketAddr,
    latency: Latency,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    killed: AtomicBool,
    served: AtomicU64,
    /// Clones of the open connections, to reset them on kill.
    connections: Mutex<Vec<TcpStream>>,
}

impl Backend {
    /// Binds 127.0.0.1:0 and starts serving; each response waits a sample of `latency`
    /// (drawn per connection from a generator seeded with `seed`).
    pub fn start(name: &str, latency: Latency, seed: u64) -> io::Result<Backend> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            killed: AtomicBool::new(false),
            served: AtomicU64::new(0),
            connections: Mutex::new(Vec::new()),
        });
        let accept = {
            let (name, shared) = (name.to_owned(), shared.clone());
            thread::Builder::new()
                .name(format!("backend-{name}"))
                .spawn(move || accept_loop(listener, &name, latency, seed, &shared))?
        };
        Ok(Backend {
            name: name.to_owned(),
            addr,
            latency,
            shared,
            accept: Some(accept),
        })
    }

    /// Its name (the body of every response).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The peer id to give a list: `127.0.0.1:port`.
    pub fn peer_id(&self) -> String {
        self.addr.to_string()
    }

    /// Its response delay distribution.
    pub fn latency(&self) -> Latency {
        self.latency
    }

    /// Responses it has sent (counted before sending).
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// Kills it: the port closes (new connections are refused) and every open connection is
    /// reset; requests in progress get no response. Idempotent.
    pub fn kill(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.killed.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and returns, dropping the listener.
        let _ = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT);
        let _ = accept.join();
        let connections = std::mem::take(&mut *self.shared.connections.lock().unwrap());
        for c in connections {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

fn accept_loop(
    listener: TcpListener,
    name: &str,
    latency: Latency,
    seed: u64,
    shared: &Arc<Shared>,
) {
    for (n, stream) in listener.incoming().enumerate() {
        if shared.killed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if let Ok(clone) = stream.try_clone() {
            shared.connections.lock().unwrap().push(clone);
        }
        let (name, shared) = (name.to_owned(), shared.clone());
        let rng = StdRng::seed_from_u64(seed ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        thread::spawn(move || {
            // A client that hangs up is its own business; the server carries on.
            let _ = serve(stream, &name, latency, rng, &shared);
        });
    }
}

/// Serves requests on one connection until the client closes it or the backend dies.
fn serve(
    stream: TcpStream,
    name: &str,
    latency: Latency,
    mut rng: StdRng,
    shared: &Shared,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let Some(head) = read_head(&mut reader)? else {
            return Ok(()); // clean close between requests
        };
        let mut lines = head.lines();
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (method, version) = (parts.next(), parts.nth(1));
        let mut close = version == Some("HTTP/1.0");
        let mut body_len = 0u64;
        for line in lines {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if key.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if key.eq_ignore_ascii_case("content-length") {
                body_len = value.parse().unwrap_or(0);
            }
        }
        io::copy(&mut (&mut reader).take(body_len), &mut io::sink())?;
        if method != Some("GET") || !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
            write!(
                out,
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
        thread::sleep(Duration::from_nanos(latency.sample(1.0, &mut rng)));
        if shared.killed.load(Ordering::SeqCst) {
            return Ok(()); // dead processes send nothing
        }
        shared.served.fetch_add(1, Ordering::SeqCst);
        let body = format!("{name}\n");
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )?;
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// Reads one message head (up to the blank line), or `None` at a clean end of stream.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut head = String::new();
    let mut limited = reader.take(MAX_HEAD);
    loop {
        let before = head.len();
        if limited.read_line(&mut head)? == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
        if head[before..].trim_end_matches(['\r', '\n']).is_empty() {
            return Ok(Some(head));
        }
    }
}

/// An HTTP/1.1 client with one keep-alive connection per peer (not shared between
/// threads: give each client thread its own).
#[derive(Default)]
pub struct Client {
    connections: HashMap<String, BufReader<TcpStream>>,
}

impl Client {
    /// A client with no connections yet.
    pub fn new() -> Client {
        Client::default()
    }

    /// `GET path` from `peer` (`host:port`); the body of a `200` response, or a message.
    /// After any error the connection is dropped (the next call reconnects).
    pub fn get(&mut self, peer: &str, path: &str) -> Result<String, String> {
        let result = self.try_get(peer, path);
        if result.is_err() {
            self.connections.remove(peer);
        }
        result
    }

    fn try_get(&mut self, peer: &str, path: &str) -> Result<String, String> {
        let io = |e: io::Error| format!("{peer}: {e}");
        if !self.connections.contains_key(peer) {
            let addr: SocketAddr = peer
                .parse()
                .map_err(|e| format!("peer {peer:?} is not an address: {e}"))?;
            let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
                .map_err(|e| format!("connect {peer}: {e}"))?;
            stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
            stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
            stream.set_nodelay(true).map_err(io)?;
            self.connections
                .insert(peer.to_owned(), BufReader::new(stream));
        }
        let conn = self.connections.get_mut(peer).expect("inserted above");
        write!(
            conn.get_mut(),
            "GET {path} HTTP/1.1\r\nHost: {peer}\r\nUser-Agent: peerlb-demo\r\n\r\n"
        )
        .map_err(io)?;
        let head = read_head(conn)
            .map_err(io)?
            .ok_or_else(|| format!("{peer}: connection closed without a response"))?;
        let status = head.lines().next().unwrap_or_default();
        let mut length = None;
        for line in head.lines().skip(1) {
            if let Some((key, value)) = line.split_once(':') {
                if key.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<u64>().ok();
                }
            }
        }
        let length = length.ok_or_else(|| format!("{peer}: response without Content-Length"))?;
        let mut body = String::new();
        conn.take(length).read_to_string(&mut body).map_err(io)?;
        if !status.starts_with("HTTP/1.1 200 ") {
            return Err(format!("{peer}: {status}"));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant() -> Latency {
        Latency::Constant(Duration::ZERO)
    }

    #[test]
    fn keep_alive_requests_are_served_and_counted() {
        let backend = Backend::start("a", instant(), 1).unwrap();
        let mut client = Client::new();
        for _ in 0..5 {
            assert_eq!(client.get(&backend.peer_id(), "/x").unwrap(), "a\n");
        }
        assert_eq!(backend.served(), 5);
        assert_eq!(client.connections.len(), 1);
    }

    #[test]
    fn a_killed_backend_resets_open_connections_and_refuses_new_ones() {
        let mut backend = Backend::start("b", instant(), 1).unwrap();
        let id = backend.peer_id();
        let mut client = Client::new();
        client.get(&id, "/").unwrap();
        backend.kill();
        // The kept-alive connection fails, then reconnecting is refused.
        let first = client.get(&id, "/").unwrap_err();
        assert!(first.contains(&id), "{first}");
        let second = client.get(&id, "/").unwrap_err();
        assert!(second.starts_with("connect"), "{second}");
        assert_eq!(backend.served(), 1);
    }

    #[test]
    fn bad_requests_get_400_and_are_not_counted() {
        let backend = Backend::start("c", instant(), 1).unwrap();
        let stream = TcpStream::connect(backend.peer_id()).unwrap();
        write!(&stream, "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        let mut reply = String::new();
        BufReader::new(&stream).read_line(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
        assert_eq!(backend.served(), 0);
        let mut client = Client::new();
        assert!(client
            .get("not-an-address", "/")
            .unwrap_err()
            .contains("not an address"));
    }
}
