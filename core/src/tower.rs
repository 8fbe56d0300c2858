//! A [`tower`](https://docs.rs/tower) layer that balances an HTTP client service over a
//! [`PeerList`] with the [request rule](crate::request_rule) (cargo feature `tower`).
//!
//! [`BalanceLayer`] wraps any `Service<http::Request<B>, Response = http::Response<_>>` that
//! sends a request to its URI (hyper-util's legacy `Client`, a tonic `Channel`'s inner
//! service, ...): each request's URI gets the chosen peer's `host:port` as its authority
//! (path and query kept), its `Host` header is set to the URI's original authority when
//! it has none, and the core's rule judges the attempt: connect errors, resets, timeouts
//! and 5xx are failures of the peer, other statuses ok; the latency to the response's head
//! is reported; a failed request is sent again to another peer when the rule allows
//! (idempotent method or [`Idempotent`]`(true)` in the request's extensions, or a connect
//! that failed; attempts left; the rule's timeout; the retry budget) and a copy of the
//! request can be made ([`Replay`]: bodies that are `Clone`, by default). When no retry
//! follows, the caller gets the last response or error.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use peerlb::tower::BalanceLayer;
//! use peerlb::{ListOptions, PeerList};
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! let list = PeerList::new(ListOptions::default())?;
//! list.update(["10.0.0.1:8080", "10.0.0.2:8080"], None::<&str>)?;
//! list.start()?;
//! let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let mut balanced = BalanceLayer::new(list).layer(client);
//! let request = http::Request::get("http://orders.internal/v1/orders").body(Empty::new())?;
//! let response = balanced.call(request).await?; // sent to 10.0.0.x:8080
//! # let _ = response; Ok(()) }
//! ```
//!
//! With `https`, the inner service's connector sees the peer's address, not the URI's
//! host: give it a TLS configuration that names the service (the Python and Node
//! integrations do this themselves; a tower layer cannot reach into a connector).
//!
//! What a retried response was is dropped unread (its connection is not reused). The
//! classifier ([`BalanceLayer::classify`]) runs on the task that polls the service's
//! future, never on the library's runtime, with no lock held.

use std::error::Error as StdError;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_timer::Delay;
use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{HeaderMap, HeaderValue, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::choice::Choice;
use crate::list::PeerList;
use crate::request::{Outcome, Request};
use crate::request_rule::{peer_address, AttemptResult, RequestCall, RequestInfo, RequestRule};

/// The error type of [`Balance`]: the inner service's error, or peerlb's (no peer).
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What a classifier is shown of an attempt.
#[derive(Debug)]
pub enum Attempted<'a> {
    /// The peer answered (the body not read yet).
    Response {
        /// Its status.
        status: StatusCode,
        /// Its headers.
        headers: &'a HeaderMap,
    },
    /// The inner service failed.
    Error(&'a (dyn StdError + Send + Sync + 'static)),
}

type Classifier = dyn Fn(&Attempted<'_>) -> Option<Outcome> + Send + Sync;

/// A request extension that marks a request as safe (`true`) or unsafe (`false`) to send
/// twice, overriding its method (see [`RequestInfo::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idempotent(pub bool);

/// How the layer makes the copy of a request it sends when it retries.
pub trait Replay<B>: Clone + Send + Sync + 'static {
    /// A copy of `request` to send again, or `None` when its body cannot be sent twice
    /// (the request is then never retried after a failure).
    fn replay(&self, request: &http::Request<B>) -> Option<http::Request<B>>;
}

/// [`Replay`] by cloning the request: for bodies that are `Clone` (`Full<Bytes>`,
/// `Empty<Bytes>`, `String`, ...). The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneBody;

impl<B: Clone> Replay<B> for CloneBody {
    fn replay(&self, request: &http::Request<B>) -> Option<http::Request<B>> {
        Some(request.clone())
    }
}

/// [`Replay`] that never copies: for streaming bodies (hyper's `Incoming`, tonic's), which
/// can be sent once. Such requests still go to a chosen peer and report their outcomes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReplay;

impl<B> Replay<B> for NoReplay {
    fn replay(&self, _request: &http::Request<B>) -> Option<http::Request<B>> {
        None
    }
}

/// The rule's overall timeout passed while an attempt waited for its response.
#[derive(Debug)]
pub struct RuleTimedOut;

impl fmt::Display for RuleTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request rule's timeout passed before the response")
    }
}

impl StdError for RuleTimedOut {}

struct Shared {
    list: PeerList,
    rule: RequestRule,
    classify: Option<Arc<Classifier>>,
}

/// The layer: wraps a service in a [`Balance`]. See the [module docs](self).
pub struct BalanceLayer<R = CloneBody> {
    shared: Arc<Shared>,
    replay: R,
}

impl<R: Clone> Clone for BalanceLayer<R> {
    fn clone(&self) -> Self {
        BalanceLayer {
            shared: self.shared.clone(),
            replay: self.replay.clone(),
        }
    }
}

impl BalanceLayer<CloneBody> {
    /// Balances over `list` (a started list of `host:port` peers) with the core's default
    /// rule, copying requests for retries by cloning them.
    pub fn new(list: PeerList) -> BalanceLayer<CloneBody> {
        BalanceLayer {
            shared: Arc::new(Shared {
                list,
                rule: RequestRule::default(),
                classify: None,
            }),
            replay: CloneBody,
        }
    }
}

impl<R> BalanceLayer<R> {
    fn with(self, f: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Shared {
            list: self.shared.list.clone(),
            rule: self.shared.rule.clone(),
            classify: self.shared.classify.clone(),
        };
        f(&mut shared);
        BalanceLayer {
            shared: Arc::new(shared),
            replay: self.replay,
        }
    }

    /// Uses `rule` instead of the default one.
    pub fn rule(self, rule: RequestRule) -> Self {
        self.with(|s| s.rule = rule)
    }

    /// A classifier that may override the rule's outcome of an attempt (return `None` to
    /// keep it), e.g. `declined` for a 429.
    pub fn classify(
        self,
        classify: impl Fn(&Attempted<'_>) -> Option<Outcome> + Send + Sync + 'static,
    ) -> Self {
        self.with(|s| s.classify = Some(Arc::new(classify)))
    }

    /// How requests are copied for retries ([`CloneBody`], [`NoReplay`], or your own).
    pub fn replay<R2>(self, replay: R2) -> BalanceLayer<R2> {
        BalanceLayer {
            shared: self.shared,
            replay,
        }
    }
}

impl<S, R: Clone> Layer<S> for BalanceLayer<R> {
    type Service = Balance<S, R>;

    fn layer(&self, inner: S) -> Balance<S, R> {
        Balance {
            inner,
            shared: self.shared.clone(),
            replay: self.replay.clone(),
        }
    }
}

/// The service [`BalanceLayer`] makes. Cheap to clone when the inner service is.
pub struct Balance<S, R = CloneBody> {
    inner: S,
    shared: Arc<Shared>,
    replay: R,
}

impl<S: Clone, R: Clone> Clone for Balance<S, R> {
    fn clone(&self) -> Self {
        Balance {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            replay: self.replay.clone(),
        }
    }
}

impl<S, R> fmt::Debug for Balance<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balance")
            .field("list", &self.shared.list.strategy_name())
            .field("rule", &self.shared.rule)
            .finish()
    }
}

impl<S, B, RB, R> Service<http::Request<B>> for Balance<S, R>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    RB: Send + 'static,
    R: Replay<B>,
{
    type Response = http::Response<RB>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<RB>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The service made ready by poll_ready is the one to call; keep a fresh clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let replay = self.replay.clone();
        Box::pin(send(shared, inner, replay, request))
    }
}

/// What the rule calls a failure of the inner service: the first I/O error in its chain
/// decides (refused or unreachable: the connect failed; reset, aborted, broken pipe or
/// early EOF: reset; timed out), and [`RuleTimedOut`] is a timeout.
fn attempt_result(error: &(dyn StdError + 'static)) -> AttemptResult {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<RuleTimedOut>() {
            return AttemptResult::TimedOut;
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::AddrNotAvailable => AttemptResult::ConnectFailed,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => AttemptResult::Reset,
                io::ErrorKind::TimedOut => AttemptResult::TimedOut,
                _ => AttemptResult::Failed,
            };
        }
        cause = e.source();
    }
    AttemptResult::Failed
}

/// `uri` with `peer` (`host:port`) as its authority; the scheme is kept (http when none).
fn to_peer(uri: &Uri, peer: &str) -> Result<Uri, BoxError> {
    let (host, port) = peer_address(peer)?;
    let authority: Authority = if host.contains(':') {
        format!("[{host}]:{port}").parse()?
    } else {
        format!("{host}:{port}").parse()?
    };
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(uri.scheme().cloned().unwrap_or(Scheme::HTTP));
    parts.authority = Some(authority);
    parts.path_and_query = Some(
        uri.path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    Ok(Uri::from_parts(parts)?)
}

async fn choose(call: &mut RequestCall, list: &PeerList) -> crate::Result<Choice> {
    call.choose_async(list, &Request::new()).await
}

/// One request: choose, send to the peer, report; again while the rule says so.
async fn send<S, B, RB, R>(
    shared: Arc<Shared>,
    mut inner: S,
    replay: R,
    mut request: http::Request<B>,
) -> Result<http::Response<RB>, BoxError>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Error: Into<BoxError>,
    R: Replay<B>,
{
    if !request.headers().contains_key(HOST) {
        if let Some(authority) = request.uri().authority() {
            let value = HeaderValue::from_str(authority.as_str())?;
            request.headers_mut().insert(HOST, value);
        }
    }
    let idempotent = request.extensions().get::<Idempotent>().map(|i| i.0);
    let original = request.uri().clone();
    let mut spare = replay.replay(&request);
    let info = RequestInfo::new(request.method().as_str(), spare.is_some(), idempotent);
    let mut call = RequestCall::new(&shared.rule, info);
    let mut choice = choose(&mut call, &shared.list).await?;
    let mut first = true;
    loop {
        if !first {
            poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
        }
        first = false;
        *request.uri_mut() = to_peer(&original, choice.peer().as_str())?;
        let attempt = inner.call(request);
        let answered = match call.remaining() {
            None => attempt.await.map_err(Into::into),
            Some(left) => {
                let mut attempt = std::pin::pin!(attempt);
                let mut timer = Delay::new(left);
                poll_fn(|cx| {
                    if let Poll::Ready(r) = attempt.as_mut().poll(cx) {
                        return Poll::Ready(r.map_err(Into::into));
                    }
                    Pin::new(&mut timer)
                        .poll(cx)
                        .map(|()| Err(Box::new(RuleTimedOut) as BoxError))
                })
                .await
            }
        };
        let classify =
            |attempted: Attempted<'_>| shared.classify.as_ref().and_then(|c| c(&attempted));
        match answered {
            Ok(response) => {
                let classified = classify(Attempted::Response {
                    status: response.status(),
                    headers: response.headers(),
                });
                let status = AttemptResult::status(response.status().as_u16())
                    .unwrap_or(AttemptResult::Failed);
                let report = call.report(choice, status, classified);
                let Some(next) = spare.take().filter(|_| report.retry) else {
                    return Ok(response);
                };
                match choose(&mut call, &shared.list).await {
                    Ok(c) => choice = c,
                    Err(_) => return Ok(response),
                }
                request = next;
            }
            Err(error) => {
                let classified = classify(Attempted::Error(&*error));
                let report = call.report(choice, attempt_result(&*error), classified);
                let Some(next) = spare.take().filter(|_| report.retry) else {
                    return Err(error);
                };
                match choose(&mut call, &shared.list).await {
                    Ok(c) => choice = c,
                    Err(_) => return Err(error),
                }
                request = next;
            }
        }
        spare = replay.replay(&request);
    }
}
