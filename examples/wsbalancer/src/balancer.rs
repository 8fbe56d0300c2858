//! The balancer: its configuration, the peer list behind it, the sessions it proxies, and
//! the session listener that logs every session and tells a session when an admin asked it
//! to move.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peerlb::session::SessionEventKind;
use peerlb::{ListOptions, PeerList, Subscription};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::valve::ValveChain;

/// How a balancer runs.
pub struct Config {
    /// The backends' peer ids (`host:port`).
    pub backends: Vec<String>,
    /// The strategy spec (default `fewest-pending`: fewest open sessions).
    pub strategy: String,
    /// How long opening a session or failing one over waits for a peer.
    pub wait: Duration,
    /// How long dialing a backend may take.
    pub dial_timeout: Duration,
    /// Unacknowledged client messages kept per session before the client is read no more
    /// (back-pressure).
    pub max_unacked: usize,
    /// The valves every message passes.
    pub valves: ValveChain,
    /// Print session events to stderr.
    pub log_sessions: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backends: Vec::new(),
            strategy: "fewest-pending".into(),
            wait: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(2),
            max_unacked: 4096,
            valves: ValveChain::default(),
            log_sessions: true,
        }
    }
}

/// What the balancer knows of one proxied session (for the admin API and the demo).
pub struct SessionInfo {
    /// The client's address.
    pub client: SocketAddr,
    /// The path the client asked for.
    pub path: String,
    /// Notified when an admin asks the session to move.
    pub move_requested: Notify,
    /// Client messages relayed to backends (first sends, not replays).
    pub from_client: AtomicU64,
    /// Backend messages relayed to the client.
    pub to_client: AtomicU64,
    /// Messages re-sent after failovers.
    pub replayed: AtomicU64,
    /// Failovers so far.
    pub failovers: AtomicU64,
    /// The backend now.
    pub backend: Mutex<String>,
}

/// A running balancer's shared state.
pub struct Balancer {
    /// The peer list of the backends.
    pub list: PeerList,
    /// The configuration.
    pub config: Config,
    /// Open sessions by session id.
    pub sessions: Mutex<HashMap<u64, Arc<SessionInfo>>>,
    /// Clients served since start, and clients closed by the balancer with an error code.
    pub clients: AtomicU64,
    /// Clients the balancer closed with an error (no backend, declined, ...).
    pub client_errors: AtomicU64,
    started: Instant,
    _listener: Mutex<Option<Subscription>>,
}

impl Balancer {
    /// A balancer over `config.backends`, its list started.
    pub fn new(config: Config) -> Result<Arc<Balancer>, peerlb::Error> {
        let list = PeerList::new(ListOptions::default().strategy_name(&config.strategy)?)?;
        list.update(config.backends.iter().map(String::as_str), None::<&str>)?;
        list.start()?;
        let balancer = Arc::new(Balancer {
            list,
            config,
            sessions: Mutex::new(HashMap::new()),
            clients: AtomicU64::new(0),
            client_errors: AtomicU64::new(0),
            started: Instant::now(),
            _listener: Mutex::new(None),
        });
        let weak = Arc::downgrade(&balancer);
        let subscription = balancer.list.subscribe_sessions(move |event| {
            let Some(balancer) = weak.upgrade() else {
                return;
            };
            if balancer.config.log_sessions {
                eprintln!(
                    "{} session {} {} {} ({})",
                    balancer.stamp(),
                    event.session,
                    event.kind,
                    event.peer,
                    event.reason
                );
            }
            if event.kind == SessionEventKind::FailoverRequested {
                if let Some(info) = balancer.session(event.session) {
                    info.move_requested.notify_one();
                }
            }
        });
        *balancer._listener.lock().unwrap() = Some(subscription);
        Ok(balancer)
    }

    /// A log line's time: seconds since the Unix epoch, with milliseconds.
    pub fn stamp(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        format!("{}.{:03}", now.as_secs(), now.subsec_millis())
    }

    /// Seconds since the balancer started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The session `id`'s info, if it is proxied now.
    pub fn session(&self, id: u64) -> Option<Arc<SessionInfo>> {
        self.sessions.lock().unwrap().get(&id).cloned()
    }

    /// Every open session as JSON (`GET /session/list`).
    pub fn sessions_json(&self) -> serde_json::Value {
        let sessions = self.sessions.lock().unwrap();
        let mut ids: Vec<&u64> = sessions.keys().collect();
        ids.sort();
        serde_json::Value::Array(
            ids.into_iter()
                .map(|id| {
                    let s = &sessions[id];
                    serde_json::json!({
                        "id": id,
                        "client": s.client.to_string(),
                        "uri": s.path,
                        "backendId": *s.backend.lock().unwrap(),
                        "reconnects": s.failovers.load(Ordering::Relaxed),
                        "msgsReceived": s.from_client.load(Ordering::Relaxed),
                        "msgsSent": s.to_client.load(Ordering::Relaxed),
                        "replayed": s.replayed.load(Ordering::Relaxed),
                    })
                })
                .collect(),
        )
    }

    /// Serves WebSocket clients on `listener` until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, client)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let balancer = self.clone();
            tokio::spawn(async move {
                crate::proxy::serve_client(balancer, stream, client).await;
            });
        }
    }
}
