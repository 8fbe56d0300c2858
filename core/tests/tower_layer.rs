//! `peerlb::tower::BalanceLayer` around hyper-util's client, against real HTTP servers on
//! 127.0.0.1 (four backends, one killed halfway). Nothing here depends on speed: waits end
//! on events, and the only time bounds are seconds wide.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use peerlb::request_rule::{RequestRule, RequestRuleOptions, RuleBudget};
use peerlb::retry::RetryBudget;
use peerlb::tower::{Attempted, Balance, BalanceLayer, BoxError, Idempotent, NoReplay};
use peerlb::transport::{Subscriber, Transport};
use peerlb::{Clock, ConnectionStatus, ListOptions, Outcome, PeerId, PeerList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tower_layer::Layer;
use tower_service::Service;

const URL: &str = "http://service.test:8080";

/// A backend: answers `/fail` with 503, `/hang` never, anything else with 200 and
/// `server=<i> host=<Host>`; counts requests. `kill` closes the port and resets
/// connections.
struct Backend {
    index: usize,
    peer: String,
    hits: Arc<AtomicU64>,
    hosts: Arc<Mutex<Vec<String>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Backend {
    async fn start(index: usize) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = listener.local_addr().unwrap().to_string();
        let hits = Arc::new(AtomicU64::new(0));
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let (h, hs, ts) = (hits.clone(), hosts.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                stream.set_zero_linger().unwrap();
                let task = tokio::spawn(serve(index, stream, h.clone(), hs.clone()));
                ts.lock().unwrap().push(task);
            }
        });
        tasks.lock().unwrap().push(accept);
        Backend {
            index,
            peer,
            hits,
            hosts,
            tasks,
        }
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Closes the port and resets every connection (their sockets linger 0).
    async fn kill(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn serve(
    index: usize,
    mut stream: TcpStream,
    hits: Arc<AtomicU64>,
    hosts: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        while buf.len() < end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + length);
        hits.fetch_add(1, Ordering::SeqCst);
        let host = header("host");
        hosts.lock().unwrap().push(host.clone());
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        if path.starts_with("/hang") {
            std::future::pending::<()>().await;
        }
        let (code, reason) = if path.starts_with("/fail") {
            (503, "Service Unavailable")
        } else {
            (200, "OK")
        };
        let body = format!("server={index} host={host}");
        let response = format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn backends(n: usize) -> Vec<Backend> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(Backend::start(i).await);
    }
    out
}

fn total(backends: &[Backend]) -> u64 {
    backends.iter().map(Backend::hits).sum()
}

fn running_list(backends: &[Backend], options: ListOptions) -> PeerList {
    let list = PeerList::new(options.shuffle(false)).unwrap();
    list.update(backends.iter().map(|b| b.peer.as_str()), None::<&str>)
        .unwrap();
    list.start().unwrap();
    list
}

type HyperClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HyperClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("{URL}{path}"))
        .body(Full::default())
        .unwrap()
}

async fn send(
    service: &mut Balance<HyperClient>,
    request: http::Request<Full<Bytes>>,
) -> Result<(u16, String), BoxError> {
    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
    let response = service.call(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn killed_backend_costs_no_errors_and_is_ejected() {
    let backends = backends(4).await;
    let list = running_list(&backends, ListOptions::default());
    let mut service = BalanceLayer::new(list.clone()).layer(client());
    let mut errors = 0;
    for i in 0..400 {
        if i == 200 {
            backends[2].kill().await;
        }
        match send(&mut service, get("/")).await {
            Ok((200, body)) => assert!(body.ends_with("host=service.test:8080"), "{body}"),
            other => {
                errors += 1;
                eprintln!("request {i}: {other:?}");
            }
        }
    }
    assert_eq!(errors, 0);
    let dead = list
        .list_backends()
        .into_iter()
        .find(|p| p.id == backends[2].peer)
        .unwrap();
    assert!(dead.ejected, "{dead:?}");
    assert!(backends.iter().all(|b| b.index == 2 || b.hits() > 100));
    assert!(backends.iter().all(|b| b
        .hosts
        .lock()
        .unwrap()
        .iter()
        .all(|h| h == "service.test:8080")));
}

#[tokio::test]
async fn post_is_not_retried_once_sent_and_get_is() {
    let backends = backends(4).await;
    let list = running_list(&backends, ListOptions::default());
    let mut service = BalanceLayer::new(list).layer(client());
    let before = total(&backends);
    let post = http::Request::post(format!("{URL}/fail"))
        .body(Full::from("order=1"))
        .unwrap();
    assert_eq!(send(&mut service, post).await.unwrap().0, 503);
    assert_eq!(total(&backends) - before, 1);
    let before = total(&backends);
    assert_eq!(send(&mut service, get("/fail")).await.unwrap().0, 503);
    assert_eq!(total(&backends) - before, 3);
    let before = total(&backends);
    let mut opted = http::Request::post(format!("{URL}/fail"))
        .body(Full::from("x"))
        .unwrap();
    opted.extensions_mut().insert(Idempotent(true));
    assert_eq!(send(&mut service, opted).await.unwrap().0, 503);
    assert_eq!(total(&backends) - before, 3);
}

#[tokio::test]
async fn a_request_that_cannot_be_copied_is_sent_once() {
    let backends = backends(2).await;
    let list = running_list(&backends, ListOptions::default());
    let mut service = BalanceLayer::new(list).replay(NoReplay).layer(client());
    let before = total(&backends);
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap();
    let response = service.call(get("/fail")).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(total(&backends) - before, 1);
}

#[tokio::test]
async fn budget_stops_a_retry_storm() {
    let backends = backends(4).await;
    let list = running_list(&backends, ListOptions::default());
    let budget = RetryBudget::new(0.1, 0, Duration::from_secs(10), Clock::real()).unwrap();
    let rule = RequestRule::new(&RequestRuleOptions {
        budget: Some(RuleBudget::Shared(budget)),
        ..Default::default()
    })
    .unwrap();
    let mut service = BalanceLayer::new(list).rule(rule).layer(client());
    let before = total(&backends);
    for _ in 0..100 {
        assert_eq!(send(&mut service, get("/fail")).await.unwrap().0, 503);
    }
    let attempts = total(&backends) - before;
    println!("100 failing GETs under a 10% budget: {attempts} attempts (300 without it)");
    assert!(attempts <= 110, "{attempts}");
}

#[tokio::test]
async fn the_rules_timeout_is_honoured() {
    let backends = backends(4).await;
    let list = running_list(&backends, ListOptions::default().ejection(None));
    let rule = RequestRule::from_spec("timeout_ms=300", None).unwrap();
    let mut service = BalanceLayer::new(list).rule(rule).layer(client());
    let t0 = Instant::now();
    let err = send(&mut service, get("/hang")).await.unwrap_err();
    let took = t0.elapsed();
    println!("GET /hang under a rule timeout of 300 ms: {err} after {took:?}");
    assert!(err.to_string().contains("timeout"), "{err}");
    assert!(took < Duration::from_secs(10));
}

#[tokio::test]
async fn a_classifier_overrides_the_rule_and_no_peer_is_an_error() {
    let backends = backends(2).await;
    let list = running_list(&backends, ListOptions::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let mut service = BalanceLayer::new(list.clone())
        .classify(move |a| {
            if let Attempted::Response { status, .. } = a {
                s.lock().unwrap().push(status.as_u16());
                if status.as_u16() == 503 {
                    return Some(Outcome::Declined);
                }
            }
            None
        })
        .layer(client());
    let before = total(&backends);
    assert_eq!(send(&mut service, get("/fail")).await.unwrap().0, 503);
    assert_eq!(total(&backends) - before, 1);
    assert_eq!(*seen.lock().unwrap(), [503]);
    assert!(list.list_backends().iter().all(|p| p.failures == 0));

    let idle = PeerList::new(ListOptions::default()).unwrap();
    let mut service = BalanceLayer::new(idle).layer(client());
    let err = send(&mut service, get("/")).await.unwrap_err();
    let err = err.downcast::<peerlb::Error>().unwrap();
    assert_eq!(err.code(), peerlb::ErrorCode::NotStarted);
}

/// A transport whose peers become available only when told.
#[derive(Default)]
struct SlowToStart {
    subscribers: Mutex<Vec<Subscriber>>,
}

impl Transport for SlowToStart {
    fn name(&self) -> &str {
        "slow-to-start"
    }
    fn retain(&self, _peer: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        self.subscribers.lock().unwrap().push(subscriber.clone());
        Ok(())
    }
    fn release(&self, _peer: &PeerId, _subscriber: &Subscriber) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn waiting_for_a_peer_does_not_block_the_executor() {
    let backends = backends(4).await;
    let transport = Arc::new(SlowToStart::default());
    let list = PeerList::new(ListOptions::default().transport(transport.clone())).unwrap();
    list.update(backends.iter().map(|b| b.peer.as_str()), None::<&str>)
        .unwrap();
    list.start().unwrap();
    let rule = RequestRule::from_spec("timeout_ms=20000", None).unwrap();
    let service = BalanceLayer::new(list).rule(rule).layer(client());
    let worst = Arc::new(Mutex::new(Duration::ZERO));
    let w = worst.clone();
    let ticker = tokio::spawn(async move {
        loop {
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_millis(10)).await;
            let late = t0.elapsed().saturating_sub(Duration::from_millis(10));
            let mut worst = w.lock().unwrap();
            *worst = (*worst).max(late);
        }
    });
    let t = transport.clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for s in t.subscribers.lock().unwrap().iter() {
            s.set_status(ConnectionStatus::Available);
        }
    });
    let requests: Vec<_> = (0..100)
        .map(|_| {
            let mut s = service.clone();
            tokio::spawn(async move { send(&mut s, get("/")).await })
        })
        .collect();
    // Measured while they wait (before the peers are released).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = *worst.lock().unwrap();
    release.await.unwrap();
    for r in requests {
        assert_eq!(r.await.unwrap().unwrap().0, 200);
    }
    ticker.abort();
    println!("longest timer lateness while 100 requests waited for a peer: {waiting:?}");
    assert!(waiting < Duration::from_secs(1));
}
