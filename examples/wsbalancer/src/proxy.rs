//! One client: accept its WebSocket, open a peerlb session, dial the backend, and relay in
//! both directions, failing over (and re-sending what the old backend did not acknowledge)
//! when the backend connection ends abnormally. See [`crate::protocol`] for the scheme.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use peerlb::{Reason, Request, Session};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::server::{Request as ServerRequest, Response};
use tokio_tungstenite::tungstenite::http::Request as HttpRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::balancer::{Balancer, SessionInfo};
use crate::protocol::{self, Payload, ABNORMAL_CLOSE_CODES, RESUME_HEADER, SESSION_HEADER};

type Client = WebSocketStream<TcpStream>;
type Backend = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a dial went.
enum Dial {
    Connected(Box<Backend>),
    /// The backend refused on purpose (HTTP 401/403).
    Declined(u16),
    /// Anything else: try another backend.
    Failed(String, Option<i64>),
}

/// Why the relay loop stopped.
enum Stop {
    /// The client closed (or went away): close the backend, close the session.
    Client,
    /// The backend closed normally: close the client, close the session.
    BackendClosed(Option<CloseFrame>),
    /// The backend connection ended abnormally: fail over.
    BackendLost(Reason),
    /// An admin asked the session to move: close the backend politely, fail over.
    MoveRequested,
}

/// The client messages not yet acknowledged, with their sequence numbers.
struct Unacked {
    next_seq: u64,
    queue: VecDeque<(u64, Payload)>,
}

impl Unacked {
    fn first_seq(&self) -> u64 {
        self.queue.front().map_or(self.next_seq, |(s, _)| *s)
    }

    fn acked(&mut self, upto: u64) {
        while self.queue.front().is_some_and(|(s, _)| *s <= upto) {
            self.queue.pop_front();
        }
    }
}

/// Serves one client until it or the session ends.
#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
pub async fn serve_client(balancer: Arc<Balancer>, stream: TcpStream, client: SocketAddr) {
    let path = Arc::new(Mutex::new(String::from("/")));
    let seen = path.clone();
    let accepted =
        tokio_tungstenite::accept_hdr_async(stream, move |req: &ServerRequest, resp: Response| {
            *seen.lock().unwrap() = req
                .uri()
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_owned());
            Ok(resp)
        })
        .await;
    let Ok(mut ws) = accepted else {
        return;
    };
    let path = path.lock().unwrap().clone();
    balancer.clients.fetch_add(1, Ordering::Relaxed);
    let request = Request::new().with_timeout(balancer.config.wait);
    let session = match balancer.list.open_session_async(&request).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{} client {client}: no backend: {e}", balancer.stamp());
            balancer.client_errors.fetch_add(1, Ordering::Relaxed);
            close(&mut ws, CloseCode::Again, "no backend available").await;
            return;
        }
    };
    let info = Arc::new(SessionInfo {
        client,
        path: path.clone(),
        move_requested: tokio::sync::Notify::new(),
        from_client: 0.into(),
        to_client: 0.into(),
        replayed: 0.into(),
        failovers: 0.into(),
        backend: Mutex::new(session.peer().to_string()),
    });
    balancer
        .sessions
        .lock()
        .unwrap()
        .insert(session.id(), info.clone());
    if session.failover_requested() {
        // Asked to move between the open and the registration above.
        info.move_requested.notify_one();
    }
    relay(&balancer, &session, &info, ws, &path).await;
    balancer.sessions.lock().unwrap().remove(&session.id());
}

/// Opens the first backend connection, then relays until the end, failing over as needed.
async fn relay(
    balancer: &Balancer,
    session: &Session,
    info: &SessionInfo,
    mut ws: Client,
    path: &str,
) {
    let client = info.client;
    let mut unacked = Unacked {
        next_seq: 1,
        queue: VecDeque::new(),
    };
    let mut backend = match connect(balancer, session, info, path, &unacked, None).await {
        Ok(b) => b,
        Err(code) => {
            balancer.client_errors.fetch_add(1, Ordering::Relaxed);
            close(&mut ws, code.0, &code.1).await;
            return;
        }
    };
    loop {
        match pump(balancer, session, info, &mut ws, &mut backend, &mut unacked).await {
            Stop::Client => {
                // Completes the closing handshake the client started: the reply
                // tungstenite queued goes out with a flush.
                let _ = ws.flush().await;
                let _ = backend
                    .close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "client closed".into(),
                    }))
                    .await;
                let _ = session.close();
                return;
            }
            Stop::BackendClosed(frame) => {
                let frame = frame.unwrap_or(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                });
                let _ = ws.close(Some(frame)).await;
                let _ = session.close();
                return;
            }
            Stop::BackendLost(reason) => {
                eprintln!(
                    "{} client {client}: backend {} lost ({}); failing over",
                    balancer.stamp(),
                    session.peer(),
                    reason.text()
                );
                match connect(balancer, session, info, path, &unacked, Some(reason)).await {
                    Ok(b) => backend = b,
                    Err(code) => {
                        balancer.client_errors.fetch_add(1, Ordering::Relaxed);
                        close(&mut ws, code.0, &code.1).await;
                        return;
                    }
                }
            }
            Stop::MoveRequested => {
                let _ = backend
                    .close(Some(CloseFrame {
                        code: CloseCode::Away,
                        reason: "session moved by admin".into(),
                    }))
                    .await;
                let reason = Reason::new("moved by admin");
                match connect(balancer, session, info, path, &unacked, Some(reason)).await {
                    Ok(b) => backend = b,
                    Err(code) => {
                        balancer.client_errors.fetch_add(1, Ordering::Relaxed);
                        close(&mut ws, code.0, &code.1).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Relays until one side stops.
async fn pump(
    balancer: &Balancer,
    session: &Session,
    info: &SessionInfo,
    ws: &mut Client,
    backend: &mut Backend,
    unacked: &mut Unacked,
) -> Stop {
    let valves = &balancer.config.valves;
    loop {
        let room = unacked.queue.len() < balancer.config.max_unacked;
        tokio::select! {
            biased;
            _ = info.move_requested.notified() => {
                // A request that came before an earlier move is stale.
                if session.failover_requested() {
                    return Stop::MoveRequested;
                }
            }
            from_backend = backend.next() => match from_backend {
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                    if ABNORMAL_CLOSE_CODES.contains(&code) {
                        let text = format!("backend closed with {code}");
                        return Stop::BackendLost(Reason::new(text).with_code(code.into()));
                    }
                    return Stop::BackendClosed(frame);
                }
                Some(Ok(message)) => {
                    if !matches!(message, Message::Text(_) | Message::Binary(_)) {
                        continue;
                    }
                    let got = protocol::from_backend(&message);
                    if let Some(upto) = got.ack {
                        unacked.acked(upto);
                    }
                    if let Some(payload) = got.payload.and_then(|p| valves.after_receive(p)) {
                        if ws.send(payload.into_message()).await.is_err() {
                            return Stop::Client;
                        }
                        info.to_client.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Err(e)) => return Stop::BackendLost(lost(&e)),
                None => return Stop::BackendLost(Reason::new("connection ended without a close frame").with_code(1006)),
            },
            from_client = ws.next(), if room => match from_client {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Stop::Client,
                Some(Ok(message)) => {
                    let Some(payload) = Payload::of(&message).and_then(|p| valves.before_transmit(p)) else {
                        continue;
                    };
                    let seq = unacked.next_seq;
                    unacked.next_seq += 1;
                    unacked.queue.push_back((seq, payload.clone()));
                    info.from_client.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = backend.send(protocol::to_backend(seq, payload)).await {
                        // Kept in `unacked`: the next backend gets it.
                        return Stop::BackendLost(lost(&e));
                    }
                }
            },
        }
    }
}

/// The failover reason for a backend connection error.
fn lost(error: &WsError) -> Reason {
    Reason::new(format!("backend connection failed: {error}")).with_code(1006)
}

/// Connects the session to a backend: the one it is bound to (`failover` is `None`), or,
/// after `failover`'s reason, another one; re-sends the unacknowledged messages. Retries
/// other backends while dials fail, until the configured wait is over. `Err` is the close
/// code and reason for the client.
async fn connect(
    balancer: &Balancer,
    session: &Session,
    info: &SessionInfo,
    path: &str,
    unacked: &Unacked,
    mut failover: Option<Reason>,
) -> Result<Backend, (CloseCode, String)> {
    let deadline = std::time::Instant::now() + balancer.config.wait;
    loop {
        if let Some(reason) = failover.take() {
            let request = Request::new().with_deadline(deadline);
            match session.failover_with_async(reason, &request).await {
                Ok(peer) => {
                    info.failovers.fetch_add(1, Ordering::Relaxed);
                    *info.backend.lock().unwrap() = peer.to_string();
                }
                Err(e) => {
                    eprintln!(
                        "{} session {}: no backend to fail over to: {e} (peer {:?}, code {:?})",
                        balancer.stamp(),
                        session.id(),
                        e.peer(),
                        e.remote_code()
                    );
                    let _ = session.close();
                    return Err((CloseCode::Again, "no backend available".into()));
                }
            }
        }
        let peer = session.peer();
        match dial(
            balancer,
            session,
            info,
            path,
            peer.as_str(),
            unacked.first_seq(),
        )
        .await
        {
            Dial::Connected(mut backend) => {
                for (seq, payload) in &unacked.queue {
                    if let Err(e) = backend
                        .send(protocol::to_backend(*seq, payload.clone()))
                        .await
                    {
                        failover = Some(lost(&e));
                        break;
                    }
                    info.replayed.fetch_add(1, Ordering::Relaxed);
                }
                if failover.is_none() {
                    return Ok(*backend);
                }
            }
            Dial::Declined(status) => {
                let reason =
                    Reason::new(format!("backend answered HTTP {status}")).with_code(status.into());
                let error = session.decline(reason);
                eprintln!("{} session {}: {error}", balancer.stamp(), session.id());
                return Err((CloseCode::Policy, format!("backend declined ({status})")));
            }
            Dial::Failed(why, code) => {
                let mut reason = Reason::new(why);
                if let Some(c) = code {
                    reason = reason.with_code(c);
                }
                failover = Some(reason);
            }
        }
    }
}

/// Dials `peer` for the session.
async fn dial(
    balancer: &Balancer,
    session: &Session,
    info: &SessionInfo,
    path: &str,
    peer: &str,
    resume: u64,
) -> Dial {
    let request = HttpRequest::builder()
        .uri(format!("ws://{peer}{path}"))
        .header("Host", peer)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", generate_key())
        .header(SESSION_HEADER, session.id().to_string())
        .header(RESUME_HEADER, resume.to_string())
        .header("X-Forwarded-For", info.client.ip().to_string())
        .body(());
    let Ok(request) = request else {
        return Dial::Failed(format!("bad backend address {peer:?}"), None);
    };
    let dialed = tokio::time::timeout(
        balancer.config.dial_timeout,
        tokio_tungstenite::connect_async(request),
    )
    .await;
    match dialed {
        Err(_) => Dial::Failed(format!("dialing {peer} timed out"), None),
        Ok(Ok((backend, _))) => {
            if let MaybeTlsStream::Plain(s) = backend.get_ref() {
                let _ = s.set_nodelay(true);
            }
            Dial::Connected(Box::new(backend))
        }
        Ok(Err(WsError::Http(response))) => {
            let status = response.status().as_u16();
            if status == 401 || status == 403 {
                Dial::Declined(status)
            } else {
                Dial::Failed(
                    format!("backend {peer} answered HTTP {status}"),
                    Some(status.into()),
                )
            }
        }
        Ok(Err(e)) => Dial::Failed(format!("dialing {peer} failed: {e}"), None),
    }
}

/// Closes the client with `code` and `reason`.
async fn close(ws: &mut Client, code: CloseCode, reason: &str) {
    let _ = ws
        .close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        }))
        .await;
}
