//! The admin endpoint: an opt-in HTTP/1.1 server (hyper, on the library runtime) that
//! serves the process's metrics and the backend administrator of every list in the
//! [registry](crate::registry).
//!
//! ```text
//! GET    /metrics                                  Prometheus text (OpenMetrics if Accept asks)
//! GET    /lists                                    every list: name, strategy, state, counts
//! GET    /lists/{name}                             one list's introspection
//! GET    /lists/{name}/backends                    its backends (list_backends)
//! GET    /lists/{name}/backends/{id}               one backend
//! POST   /lists/{name}/backends                    add one: {"id": "10.0.0.1:80", "weight": 2}
//! POST   /lists/{name}/backends/{id}/disable       admin disable (also enable, reset, failover)
//! DELETE /lists/{name}/backends/{id}               admin delete
//! ```
//!
//! Path segments are percent-decoded (an id with `/` is `%2F`). Answers use the admin
//! result numbers (see [`crate::admin`], the WebSocket balancer's): an admin action answers
//! `200` with [`result_json`](crate::admin::result_json)'s object,
//! `{"result":"success","code":1}` or
//! `{"result":"success","code":3,"reason":"NoActionRequired"}`; an add goes through
//! [`PeerList::add_backend`](crate::PeerList::add_backend) and answers `201` with its
//! object (`id`, and `ignored` keys) plus the new `backend`. Every failure answers a 4xx
//! (or 5xx) with `{"result":"failed","code":4,"reason":"<message>","error":"<code>"}`:
//! `list-not-found` and `not-found` (404), `peer-not-in-list` (404), `invalid-argument`
//! (400: malformed JSON, a bad id or weight), `peer-already-in-list` (409),
//! `method-not-allowed` (405, with `Allow`), `payload-too-large` (413, bodies over 64 KiB),
//! `unauthorized` (401).
//!
//! It listens on loopback by default (`127.0.0.1:9901`; a bare port such as `"9901"` or
//! `":0"` means that port on 127.0.0.1). With a bearer token every request must carry
//! `Authorization: Bearer <token>`, or it gets `401` (compared in constant time). Admin
//! actions and scrapes run on the runtime's blocking pool (they may call a transport's
//! `release`, or read a large list), never on its async workers. Dropping the
//! [`AdminServer`] (or [`AdminServer::stop`]) closes the port and every connection.
//!
//! ```
//! use peerlb::admin_http::serve_admin;
//! let server = serve_admin("127.0.0.1:0").unwrap();
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! server.stop();
//! ```

mod routes;

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// Where the admin endpoint listens when no address is given.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9901";
/// The largest request body accepted (bigger ones get `413`).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest bearer token accepted.
pub const MAX_TOKEN_LEN: usize = 1024;

/// How to serve the admin endpoint.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AdminOptions {
    /// `host:port` (a name is resolved), `[v6]:port`, or a bare port (`"9901"`, `":0"`) on
    /// 127.0.0.1; `None` is [`DEFAULT_ADDRESS`].
    pub address: Option<String>,
    /// A bearer token every request must carry (`Authorization: Bearer <token>`); 1..=1024
    /// visible ASCII characters.
    pub token: Option<String>,
}

impl fmt::Debug for AdminOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminOptions")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A running admin endpoint; dropping it stops it.
pub struct AdminServer {
    address: SocketAddr,
    stop: Mutex<Option<watch::Sender<bool>>>,
    /// Set by the accept loop once its listener is closed.
    closed: Arc<(Mutex<bool>, Condvar)>,
}

/// Tells [`AdminServer::stop`] that the listener is closed (when the accept loop ends,
/// also by an abort or a panic).
struct Closed(Arc<(Mutex<bool>, Condvar)>);

impl Drop for Closed {
    fn drop(&mut self) {
        let (flag, changed) = &*self.0;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }
}

impl fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminServer")
            .field("address", &self.address)
            .finish()
    }
}

impl AdminServer {
    /// The address it listens on (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Its base URL, e.g. `http://127.0.0.1:9901`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops it: the port is closed when this returns (it waits up to 5 s for the accept
    /// loop, except on the library runtime's own workers, where it does not wait) and open
    /// connections end. Stopping twice does nothing.
    pub fn stop(&self) {
        let sender = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sender) = sender {
            let _ = sender.send(true);
        }
        if crate::runtime::on_worker_thread() {
            return;
        }
        let (flag, changed) = &*self.closed;
        let closed = flag.lock().unwrap_or_else(|e| e.into_inner());
        let _ = changed.wait_timeout_while(closed, std::time::Duration::from_secs(5), |c| !*c);
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves the admin endpoint on `address` (see [`AdminOptions::address`]), without a token.
pub fn serve_admin(address: &str) -> Result<AdminServer> {
    serve_admin_with(AdminOptions {
        address: Some(address.to_owned()),
        token: None,
    })
}

/// The addresses `address` stands for (see [`AdminOptions::address`]).
fn resolve(address: Option<&str>) -> Result<Vec<SocketAddr>> {
    let address = address.unwrap_or(DEFAULT_ADDRESS).trim();
    let bare = address.strip_prefix(':').unwrap_or(address);
    if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = bare.parse().map_err(|_| {
            Error::InvalidArgument(format!("admin address {address:?}: no such port"))
        })?;
        return Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    }
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| Error::InvalidArgument(format!("admin address {address:?}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "admin address {address:?} has no addresses"
        )));
    }
    Ok(addrs)
}

fn check_token(token: &str) -> Result<()> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Error::InvalidArgument(format!(
            "admin token must be 1..={MAX_TOKEN_LEN} characters long"
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidArgument(
            "admin token must be visible ASCII characters (no spaces)".into(),
        ));
    }
    Ok(())
}

/// Serves the admin endpoint with these options. Errors with `invalid-argument` for a bad
/// address or token, or when the address cannot be listened on (in use, not local).
pub fn serve_admin_with(options: AdminOptions) -> Result<AdminServer> {
    if let Some(token) = &options.token {
        check_token(token)?;
    }
    let addrs = resolve(options.address.as_deref())?;
    let listener = std::net::TcpListener::bind(&addrs[..]).map_err(|e| {
        Error::InvalidArgument(format!("admin endpoint cannot listen on {addrs:?}: {e}"))
    })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::InvalidArgument(format!("admin endpoint: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::InvalidArgument(format!("admin endpoint: {e}")))?;
    let runtime = crate::runtime::handle();
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::InvalidArgument(format!("admin endpoint: {e}")))?
    };
    let (stop, stopped) = watch::channel(false);
    let token = options.token.map(Arc::<str>::from);
    let closed = Arc::new((Mutex::new(false), Condvar::new()));
    runtime.spawn(accept_loop(
        listener,
        token,
        stopped,
        Closed(closed.clone()),
    ));
    Ok(AdminServer {
        address,
        stop: Mutex::new(Some(stop)),
        closed,
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    token: Option<Arc<str>>,
    stopped: watch::Receiver<bool>,
    closed: Closed,
) {
    let closed = Arc::new(closed);
    serve(listener, token, stopped, &closed).await;
    // The listener is dropped (the port closed), and `closed` tells `stop` once every
    // connection task has ended too (each holds a clone): a kept-alive connection is not
    // served after `stop` returned.
    drop(closed);
}

async fn serve(
    listener: tokio::net::TcpListener,
    token: Option<Arc<str>>,
    mut stopped: watch::Receiver<bool>,
    closed: &Arc<Closed>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors or similar: try again shortly rather than spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let token = token.clone();
        let mut stop = stopped.clone();
        let open = closed.clone();
        tokio::spawn(async move {
            let _open = open;
            let service = service_fn(move |request| routes::handle(request, token.clone()));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stop.changed() => {}
            }
        });
    }
}
