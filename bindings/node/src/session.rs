//! Sessions for JS: `NativeSession` (exported as `Session`), `PeerList.openSession` /
//! `openSessionAsync`, the session listener, the backend administrator's data calls and
//! yarpc's queries. Every rule is the core's; the blocking forms wait on the JS thread (like
//! `choose`), the async forms on the library runtime, settling their Promise on the JS
//! thread after delivering the session events the work caused.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Either, Either3, Null, Uint8Array, Unknown};
use napi::{sys, Env, JsValue, ValueType};
use napi_derive::napi;
use peerlb::{NowOrLater, Reason, Request, SessionEvent};

use crate::convert::{self, Given};
use crate::events::{Dispatched, JsEvents};
use crate::list::NativeList;
use crate::{guard, js};

impl Dispatched for SessionEvent {
    unsafe fn args(&self, env: sys::napi_env) -> Vec<sys::napi_value> {
        let mut id = std::ptr::null_mut();
        sys::napi_create_double(env, self.session as f64, &mut id);
        vec![
            js::string(env, self.kind.as_str()),
            id,
            js::string(env, self.peer.as_str()),
            js::string(env, &self.reason),
        ]
    }
}

/// Where a list's session events go (shared with its sessions' async forms, which deliver
/// them before their Promise settles).
pub(crate) type SessionEvents = Arc<Mutex<Option<Arc<JsEvents<SessionEvent>>>>>;

fn deliver(events: &SessionEvents, env: sys::napi_env) {
    let events = events.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(events) = events {
        unsafe { events.deliver(env) };
    }
}

/// Options of `openSession` / `openSessionAsync`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct SessionOptions {
    /// How long to wait for an available peer; without it, a list with none fails at once.
    pub timeout_ms: Option<Either<f64, Null>>,
    /// The key hash-based strategies map to a peer (others ignore it).
    pub shard_key: Option<Either3<String, Uint8Array, Null>>,
}

/// Options of `session.failover(reason, options)`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct FailoverOptions {
    /// How long to wait for another peer; without it, no other peer now is
    /// PEERLB_NO_PEER_AVAILABLE.
    pub timeout_ms: Option<Either<f64, Null>>,
    /// The remote system's own code for the closure (e.g. the WebSocket close code 1006),
    /// carried by a failover's error as `remoteCode`.
    pub remote_code: Option<Either<f64, Null>>,
    /// A shard key replacing the session's.
    pub shard_key: Option<Either3<String, Uint8Array, Null>>,
}

/// Options of `session.decline(reason, options)`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct DeclineOptions {
    /// The remote system's own code for the refusal (e.g. the HTTP status 401).
    pub remote_code: Option<Either<f64, Null>>,
}

fn key_of(key: Option<Either3<String, Uint8Array, Null>>) -> Option<Vec<u8>> {
    match key.given() {
        Some(Either::A(s)) => Some(s.into_bytes()),
        Some(Either::B(b)) => Some(b.to_vec()),
        None => None,
    }
}

/// A request with a deadline `timeout_ms` from now (none when not given); the caller adds
/// the shard key it owns.
fn request(
    timeout_ms: Option<Either<f64, Null>>,
    env: &Env,
    what: &str,
) -> napi::Result<Request<'static>> {
    let mut request = Request::new();
    if let Some(ms) = timeout_ms.given() {
        let t = convert::millis(ms).map_err(|m| convert::invalid(env, what, m))?;
        request = request.with_timeout(t);
    }
    Ok(request)
}

/// Reads a reason argument: a string, or undefined/null for none.
fn reason_text(env: &Env, reason: Option<Unknown>, what: &str) -> napi::Result<String> {
    match reason {
        None => Ok(String::new()),
        Some(r) => match r.get_type()? {
            ValueType::Undefined | ValueType::Null => Ok(String::new()),
            _ => unsafe { convert::arg(env.raw(), r.raw(), what) },
        },
    }
}

fn remote(env: &Env, code: Option<Either<f64, Null>>, what: &str) -> napi::Result<Option<i64>> {
    code.given()
        .map(|c| {
            convert::whole(c.abs(), (1u64 << 53) - 1)
                .map(|n| if c < 0.0 { -(n as i64) } else { n as i64 })
                .map_err(|m| convert::invalid(env, what, m))
        })
        .transpose()
}

/// A session: a long-lived connection bound to one peer, one pending request there while
/// bound. Made by `PeerList.openSession`; garbage-collecting it closes it.
#[napi]
pub struct NativeSession {
    inner: Arc<peerlb::Session>,
    events: SessionEvents,
}

#[napi]
impl NativeSession {
    /// The session's id: unique within its list, counting from 1, the same across failovers.
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.inner.id() as f64
    }

    /// The peer the session is bound to (after a failed failover, the peer it left).
    #[napi(getter)]
    pub fn peer(&self, env: Env) -> napi::Result<String> {
        guard::call(&env, || Ok(self.inner.peer().to_string()))
    }

    /// Whether an admin asked the session to move (`failover(peer)`, `delete(peer)`, a
    /// removal) since it was bound to its peer.
    #[napi(getter)]
    pub fn failover_requested(&self) -> bool {
        self.inner.failover_requested()
    }

    /// Whether the session is bound to a peer now (false once ended, and after a failed
    /// failover).
    #[napi(getter)]
    pub fn bound(&self, env: Env) -> napi::Result<bool> {
        guard::call(&env, || Ok(self.inner.is_bound()))
    }

    /// Whether the session has ended (closed or declined).
    #[napi(getter)]
    pub fn closed(&self, env: Env) -> napi::Result<bool> {
        guard::call(&env, || Ok(!self.inner.is_open()))
    }

    /// How many times the session failed over.
    #[napi(getter)]
    pub fn failovers(&self, env: Env) -> napi::Result<u32> {
        guard::call(&env, || Ok(self.inner.failovers()))
    }

    /// Marks a successful exchange: the peer's failure streak ends, and the next failover
    /// again prefers every other peer. Throws PEERLB_ALREADY_FINISHED on an ended session.
    #[napi]
    pub fn ok(&self, env: Env) -> napi::Result<()> {
        guard::call(&env, || self.inner.ok())
    }

    /// Fails the session over after an abnormal closure: the attempt ends as a failure and
    /// the session is bound to a different available peer, whose id is returned. Waits (on
    /// the calling thread: the event loop) up to `timeoutMs`; without it, no other peer now
    /// is PEERLB_NO_PEER_AVAILABLE. Errors carry `peer` (the peer left) and `remoteCode`.
    #[napi(ts_args_type = "reason?: string | null, options?: FailoverOptions")]
    pub fn failover(
        &self,
        env: Env,
        reason: Option<Unknown>,
        options: Option<Unknown>,
    ) -> napi::Result<String> {
        let (reason, request, key) = self.failover_args(&env, reason, options, "failover")?;
        let request = match &key {
            Some(k) => request.with_shard_key(k),
            None => request,
        };
        guard::call(&env, || {
            self.inner
                .failover_now(reason, &request)
                .wait()
                .map(|p| p.to_string())
        })
    }

    /// `failover` without blocking the event loop: a Promise of the new peer's id.
    #[napi(
        ts_args_type = "reason?: string | null, options?: FailoverOptions",
        ts_return_type = "Promise<string>"
    )]
    pub fn failover_async(
        &self,
        env: Env,
        reason: Option<Unknown>,
        options: Option<Unknown>,
    ) -> napi::Result<sys::napi_value> {
        let (reason, request, key) = self.failover_args(&env, reason, options, "failoverAsync")?;
        let request = match &key {
            Some(k) => request.with_shard_key(k),
            None => request,
        };
        let answer = guard::call(&env, || Ok(self.inner.failover_now(reason, &request)))?;
        let events = self.events.clone();
        let (deferred, promise) = env.create_deferred::<String, _>()?;
        match answer {
            NowOrLater::Now(result) => deferred.resolve(failover_settled(events, result)),
            // Waited for on the library's blocking pool: the bind (and its `created` event)
            // happens there, so the event is queued for JS before the Promise settles.
            NowOrLater::Later(later) => peerlb::runtime::run_blocking(move || {
                deferred.resolve(failover_settled(events, later.wait()))
            }),
        }
        Ok(promise.raw())
    }

    /// The peer declined the session on purpose (e.g. authentication): the session ends,
    /// with no retry, counting neither as failure nor success for the peer. Returns the
    /// PEERLB_DECLINED `Error` describing it (with `peer` and `remoteCode`), to throw or
    /// log. Throws PEERLB_ALREADY_FINISHED on an ended session.
    #[napi(
        ts_args_type = "reason?: string | null, options?: DeclineOptions",
        ts_return_type = "Error & { code: 'PEERLB_DECLINED'; peer: string; remoteCode: number | null }"
    )]
    pub fn decline(
        &self,
        env: Env,
        reason: Option<Unknown>,
        options: Option<Unknown>,
    ) -> napi::Result<sys::napi_value> {
        let text = reason_text(&env, reason, "decline(reason): reason")?;
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: DeclineOptions =
            unsafe { convert::options(env.raw(), raw, "decline(reason, options)")? };
        let mut reason = Reason::new(text);
        if let Some(code) = remote(&env, o.remote_code, "decline: remoteCode")? {
            reason = reason.with_code(code);
        }
        let error = guard::call(&env, || Ok(self.inner.decline(reason)))?;
        if error.code() != peerlb::ErrorCode::Declined {
            return Err(js::throw(&env, &error));
        }
        Ok(unsafe { js::error_value(env.raw(), &error) })
    }

    /// Closes the session normally. Throws PEERLB_ALREADY_FINISHED when it has ended.
    #[napi]
    pub fn close(&self, env: Env) -> napi::Result<()> {
        guard::call(&env, || self.inner.close())
    }
}

impl NativeSession {
    fn failover_args(
        &self,
        env: &Env,
        reason: Option<Unknown>,
        options: Option<Unknown>,
        what: &str,
    ) -> napi::Result<(Reason, Request<'static>, Option<Vec<u8>>)> {
        let text = reason_text(env, reason, &format!("{what}(reason): reason"))?;
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: FailoverOptions =
            unsafe { convert::options(env.raw(), raw, &format!("{what}(reason, options)"))? };
        let mut reason = Reason::new(text);
        if let Some(code) = remote(env, o.remote_code, &format!("{what}: remoteCode"))? {
            reason = reason.with_code(code);
        }
        let key = key_of(o.shard_key);
        let request = request(o.timeout_ms, env, &format!("{what}: timeoutMs"))?;
        Ok((reason, request, key))
    }
}

/// What settles a `failoverAsync` Promise, on the JS thread: the session events first.
fn failover_settled(
    events: SessionEvents,
    result: peerlb::Result<peerlb::PeerId>,
) -> impl FnOnce(Env) -> napi::Result<String> + Send + 'static {
    move |env| {
        deliver(&events, env.raw());
        result
            .map(|p| p.to_string())
            .map_err(|e| rejection(&env, &e))
    }
}

/// What settles an `openSessionAsync` Promise, on the JS thread: the session events first.
fn open_settled(
    events: SessionEvents,
    result: peerlb::Result<peerlb::Session>,
) -> impl FnOnce(Env) -> napi::Result<NativeSession> + Send + 'static {
    move |env| {
        deliver(&events, env.raw());
        result
            .map(|s| NativeSession {
                inner: Arc::new(s),
                events: events.clone(),
            })
            .map_err(|e| rejection(&env, &e))
    }
}

/// A rejection value for a core error (the package's `Error`, with its `code`).
fn rejection(env: &Env, e: &peerlb::Error) -> napi::Error {
    let value = unsafe { js::error_value(env.raw(), e) };
    napi::Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
}

#[napi]
impl NativeList {
    /// Opens a session: chooses a peer with `choose`'s rules and binds a new session to it.
    /// Waits on the calling thread (the event loop) up to `timeoutMs`; see `openSessionAsync`.
    #[napi(ts_args_type = "options?: SessionOptions")]
    pub fn open_session(&self, env: Env, options: Option<Unknown>) -> napi::Result<NativeSession> {
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: SessionOptions =
            unsafe { convert::options(env.raw(), raw, "openSession(options)")? };
        let key = key_of(o.shard_key);
        let mut request = request(o.timeout_ms, &env, "openSession: timeoutMs")?;
        if let Some(k) = &key {
            request = request.with_shard_key(k);
        }
        let session = guard::call(&env, || self.core().open_session_now(&request).wait())?;
        Ok(NativeSession {
            inner: Arc::new(session),
            events: self.session_events(),
        })
    }

    /// `openSession` without blocking the event loop: a Promise of the session.
    #[napi(
        ts_args_type = "options?: SessionOptions",
        ts_return_type = "Promise<NativeSession>"
    )]
    pub fn open_session_async(
        &self,
        env: Env,
        options: Option<Unknown>,
    ) -> napi::Result<sys::napi_value> {
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: SessionOptions =
            unsafe { convert::options(env.raw(), raw, "openSessionAsync(options)")? };
        let key = key_of(o.shard_key);
        let mut request = request(o.timeout_ms, &env, "openSessionAsync: timeoutMs")?;
        if let Some(k) = &key {
            request = request.with_shard_key(k);
        }
        let events = self.session_events();
        let answer = guard::call(&env, || Ok(self.core().open_session_now(&request)))?;
        let (deferred, promise) = env.create_deferred::<NativeSession, _>()?;
        match answer {
            NowOrLater::Now(result) => deferred.resolve(open_settled(events, result)),
            // As in `failoverAsync`: the `created` event is queued before the Promise settles.
            NowOrLater::Later(later) => peerlb::runtime::run_blocking(move || {
                deferred.resolve(open_settled(events, later.wait()))
            }),
        }
        Ok(promise.raw())
    }

    /// Sends the list's session events to `dispatcher(kind, session, peer, reason)`
    /// (replacing any previous one). It is held weakly: the wrapper keeps it alive.
    #[napi(skip_typescript)]
    pub fn listen_sessions(&self, env: Env, dispatcher: Unknown) -> napi::Result<()> {
        if dispatcher.get_type()? != ValueType::Function {
            return Err(js::type_error(
                &env,
                "listenSessions(dispatcher): dispatcher must be a function",
            ));
        }
        let events = unsafe { JsEvents::<SessionEvent>::new(env.raw(), dispatcher.raw())? };
        let e = events.clone();
        let subscription = self.core().subscribe_sessions(move |ev| e.on_event(ev));
        *self
            .session_events()
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(events);
        self.keep_session_subscription(subscription);
        Ok(())
    }

    /// Admin: asks every open session bound to `id` to move (their `failoverRequested`
    /// turns true; session subscribers hear 'failover-requested'). Returns 'success', or
    /// 'no-action-required' when no session is bound there; throws when failed.
    #[napi(
        ts_args_type = "id: string",
        ts_return_type = "'success' | 'no-action-required'"
    )]
    pub fn failover(&self, env: Env, id: Unknown) -> napi::Result<String> {
        self.admin_op(&env, peerlb::admin::AdminOp::Failover, id)
    }

    /// Admin: adds the backend described by JSON `data` (`{"id": "host:port", "weight":
    /// 2}`; `PeerList.addBackend` also takes an object) and returns the answer as JSON:
    /// `{"result":"success","code":1,...}` or `{"result":"failed","code":4,"reason":...,
    /// "error":...}`. Bad data is a failed answer, not an exception.
    #[napi(skip_typescript)]
    pub fn add_backend_json(&self, env: Env, data: Unknown) -> napi::Result<String> {
        let data: String =
            unsafe { convert::arg(env.raw(), data.raw(), "addBackend(data): data")? };
        guard::call(&env, || Ok(self.core().add_backend(&data)))
    }

    /// Admin: one backend's configuration and state as JSON (weight, status, pending,
    /// admin and ejection state, counters, open sessions); throws PEERLB_PEER_NOT_IN_LIST
    /// for an unknown id.
    #[napi(ts_args_type = "id: string")]
    pub fn backend_config(&self, env: Env, id: Unknown) -> napi::Result<String> {
        let id: String = unsafe { convert::arg(env.raw(), id.raw(), "backendConfig(id): id")? };
        guard::call(&env, || self.core().backend_config(&id))
    }

    /// Whether peer `id` would be chosen now (retained, available, enabled, not ejected).
    #[napi(ts_args_type = "id: string")]
    pub fn available(&self, env: Env, id: Unknown) -> napi::Result<bool> {
        let id: String = unsafe { convert::arg(env.raw(), id.raw(), "available(id): id")? };
        guard::call(&env, || Ok(self.core().available(&id)))
    }

    /// Whether peer `id` is in the list but not retained (the list is not running).
    #[napi(ts_args_type = "id: string")]
    pub fn uninitialized(&self, env: Env, id: Unknown) -> napi::Result<bool> {
        let id: String = unsafe { convert::arg(env.raw(), id.raw(), "uninitialized(id): id")? };
        guard::call(&env, || Ok(self.core().uninitialized(&id)))
    }

    /// How many peers would be chosen now.
    #[napi]
    pub fn num_available(&self, env: Env) -> napi::Result<u32> {
        guard::call(&env, || Ok(count(self.core().num_available())))
    }

    /// How many retained peers would not be chosen now.
    #[napi]
    pub fn num_unavailable(&self, env: Env) -> napi::Result<u32> {
        guard::call(&env, || Ok(count(self.core().num_unavailable())))
    }

    /// How many peers are not retained (the list is not running).
    #[napi]
    pub fn num_uninitialized(&self, env: Env) -> napi::Result<u32> {
        guard::call(&env, || Ok(count(self.core().num_uninitialized())))
    }

    /// The retained peers, in the order they were added (empty while not running).
    #[napi]
    pub fn peers(&self, env: Env) -> napi::Result<Vec<String>> {
        guard::call(&env, || {
            Ok(self.core().peers().iter().map(|p| p.to_string()).collect())
        })
    }

    /// The capacity hint the list was made with (10, yarpc's default, unless given).
    #[napi(getter)]
    pub fn capacity(&self) -> f64 {
        self.core().capacity() as f64
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
