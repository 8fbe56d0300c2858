//! The native half of the Node package `peerlb`: a napi-rs addon over the `peerlb` core.
//!
//! JS code uses the wrapper in `index.js` (argument checking, `Choice` objects, Promises);
//! this addon is its internal `_native` layer. It is kept small and cheap to call: options
//! arrive as positional primitives, and a choice crosses the boundary as one number (a slot in
//! a per-list table of pending choices plus an index into a per-list table of peer ids), so a
//! `choose` + `finish` costs two plain calls.
#![deny(clippy::all)]

mod js;
mod transport;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use napi::bindgen_prelude::{Either, Object, ToNapiValue, Unknown};
use napi::JsValue;
use napi::{sys, Env, ValueType};
use napi_derive::napi;
use peerlb::{ConnectionStatus, ListOptions, Outcome, PeerId, Request};

use crate::transport::{EnvScope, JsTransport};

/// Peer ids get a small index the first time they are chosen; past this many distinct ids the
/// index 0 ("ask `peerOf(slot)`") is used instead.
const MAX_INTERNED: usize = 1 << 16;
/// 2^32: a choose result is `slot + index * 2^32`.
const SLOT_SPAN: f64 = 4_294_967_296.0;

/// Pending choices of one list, by slot, plus the peer-id table.
#[derive(Default)]
struct Table {
    slots: Vec<Option<peerlb::Choice>>,
    free: Vec<u32>,
    ids: HashMap<PeerId, u32>,
    names: Vec<PeerId>,
}

impl Table {
    /// Stores a choice and returns its encoded number.
    fn insert(&mut self, choice: peerlb::Choice) -> f64 {
        let index = match self.ids.get(choice.peer()) {
            Some(&i) => i,
            None if self.names.len() < MAX_INTERNED => {
                self.names.push(choice.peer().clone());
                let i = self.names.len() as u32; // 1-based; 0 = not interned
                self.ids.insert(choice.peer().clone(), i);
                i
            }
            None => 0,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(choice);
                s
            }
            None => {
                self.slots.push(Some(choice));
                (self.slots.len() - 1) as u32
            }
        };
        slot as f64 + index as f64 * SLOT_SPAN
    }

    fn take(&mut self, slot: f64) -> Option<peerlb::Choice> {
        if !(slot >= 0.0 && slot < self.slots.len() as f64) || slot.fract() != 0.0 {
            return None;
        }
        let s = slot as usize;
        let choice = self.slots[s].take()?;
        self.free.push(s as u32);
        Some(choice)
    }
}

/// The native peer list (internal; use `PeerList` from `index.js`).
#[napi]
pub struct NativeList {
    list: peerlb::PeerList,
    table: Arc<Mutex<Table>>,
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

fn timeout_of(ms: f64) -> Option<Duration> {
    if ms.is_nan() || ms < 0.0 {
        None
    } else if ms > 1e12 {
        Some(Duration::from_secs(86_400 * 365 * 30))
    } else {
        Some(Duration::from_secs_f64(ms / 1000.0))
    }
}

fn noop_waker() -> Waker {
    const VTABLE: RawWakerVTable = RawWakerVTable::new(
        |_| RawWaker::new(std::ptr::null(), &VTABLE),
        |_| {},
        |_| {},
        |_| {},
    );
    // SAFETY: every vtable function ignores the (null) data pointer.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

/// The result of an async choose, delivered on the JS thread: the encoded choice, or an Error.
struct AsyncResult {
    result: Result<peerlb::Choice, peerlb::Error>,
    table: Arc<Mutex<Table>>,
}

impl ToNapiValue for AsyncResult {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val.result {
            Ok(choice) => {
                let n = lock(&val.table).insert(choice);
                f64::to_napi_value(env, n)
            }
            Err(e) => Ok(js::error_value(env, &e)),
        }
    }
}

type ChooseFuture = Pin<Box<dyn Future<Output = Result<peerlb::Choice, peerlb::Error>> + Send>>;

#[napi]
impl NativeList {
    /// `new NativeList(strategy, shuffle, seed ("" = none, else decimal u64), failFast, transport | null, transportName)`.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        strategy: String,
        shuffle: bool,
        seed: String,
        fail_fast: bool,
        transport: Option<Object>,
        transport_name: String,
    ) -> napi::Result<Self> {
        let mut opts = ListOptions::default().shuffle(shuffle).fail_fast(fail_fast);
        if !seed.is_empty() {
            let seed: u64 = seed.parse().map_err(|_| {
                js::throw(
                    &env,
                    &peerlb::Error::InvalidArgument(format!("seed {seed:?} is not a u64")),
                )
            })?;
            opts = opts.seed(seed);
        }
        opts = opts.strategy_name(&strategy).map_err(|e| js::throw(&env, &e))?;
        if let Some(t) = transport {
            let t = unsafe { JsTransport::new(&env, t.raw(), transport_name)? };
            opts = opts.transport(Arc::new(t));
        }
        let list = peerlb::PeerList::new(opts).map_err(|e| js::throw(&env, &e))?;
        Ok(NativeList {
            list,
            table: Arc::default(),
        })
    }

    /// `update(addIds, addWeights, removeIds)`.
    #[napi]
    pub fn update(
        &self,
        env: Env,
        add_ids: Vec<String>,
        add_weights: Vec<u32>,
        remove: Vec<String>,
    ) -> napi::Result<()> {
        let adds: Vec<peerlb::PeerSpec> = add_ids
            .into_iter()
            .zip(add_weights.into_iter().chain(std::iter::repeat(1)))
            .map(|(id, w)| peerlb::PeerSpec::weighted(id, w))
            .collect();
        let _scope = EnvScope::enter(env.raw());
        self.list.update(adds, remove).map_err(|e| js::throw(&env, &e))
    }

    /// Starts the list (retains every peer).
    #[napi]
    pub fn start(&self, env: Env) -> napi::Result<()> {
        let _scope = EnvScope::enter(env.raw());
        self.list.start().map_err(|e| js::throw(&env, &e))
    }

    /// Stops the list (releases every peer).
    #[napi]
    pub fn stop(&self, env: Env) -> napi::Result<()> {
        let _scope = EnvScope::enter(env.raw());
        self.list.stop().map_err(|e| js::throw(&env, &e))
    }

    /// Chooses with no deadline and no shard key; returns the encoded choice.
    #[napi]
    pub fn choose0(&self, env: Env) -> napi::Result<f64> {
        match self.list.choose(&Request::new()) {
            Ok(choice) => Ok(lock(&self.table).insert(choice)),
            Err(e) => Err(js::throw(&env, &e)),
        }
    }

    /// Chooses (blocking up to `timeoutMs` when no peer is available; negative = no deadline).
    #[napi]
    pub fn choose(
        &self,
        env: Env,
        timeout_ms: f64,
        shard_key: Option<Either<String, &[u8]>>,
    ) -> napi::Result<f64> {
        let key: Option<&[u8]> = match &shard_key {
            Some(Either::A(s)) => Some(s.as_bytes()),
            Some(Either::B(b)) => Some(b),
            None => None,
        };
        let mut req = Request::new();
        if let Some(t) = timeout_of(timeout_ms) {
            req = req.with_timeout(t);
        }
        if let Some(k) = key {
            req = req.with_shard_key(k);
        }
        match self.list.choose(&req) {
            Ok(choice) => Ok(lock(&self.table).insert(choice)),
            Err(e) => Err(js::throw(&env, &e)),
        }
    }

    /// Chooses without blocking: returns the encoded choice at once when a peer is available
    /// (or throws at once when the core fails at once), else a Promise of the encoded choice or
    /// of an `Error` (the wrapper rejects with it).
    #[napi(ts_return_type = "number | Promise<number | Error>")]
    pub fn choose_async<'env>(
        &self,
        env: &'env Env,
        timeout_ms: f64,
        shard_key: Option<Either<String, &[u8]>>,
    ) -> napi::Result<Either<f64, Object<'env>>> {
        let key: Option<Vec<u8>> = match shard_key {
            Some(Either::A(s)) => Some(s.into_bytes()),
            Some(Either::B(b)) => Some(b.to_vec()),
            None => None,
        };
        let list = self.list.clone();
        let timeout = timeout_of(timeout_ms);
        let mut fut: ChooseFuture = Box::pin(async move {
            let mut req = Request::new();
            if let Some(t) = timeout {
                req = req.with_timeout(t);
            }
            if let Some(k) = &key {
                req = req.with_shard_key(k);
            }
            list.choose_async(&req).await
        });
        let waker = noop_waker();
        // The core's async wait creates its deadline timer in the calling context, which must
        // be inside a tokio runtime: enter the library's own for this first poll.
        let rt = peerlb::runtime::handle();
        let first = {
            let _enter = rt.enter();
            fut.as_mut().poll(&mut Context::from_waker(&waker))
        };
        match first {
            Poll::Ready(Ok(choice)) => Ok(Either::A(lock(&self.table).insert(choice))),
            Poll::Ready(Err(e)) => Err(js::throw(env, &e)),
            Poll::Pending => {
                let (deferred, promise) = env.create_deferred()?;
                let table = self.table.clone();
                rt.spawn(async move {
                    let result = fut.await;
                    deferred.resolve(move |_env| Ok(AsyncResult { result, table }));
                });
                Ok(Either::B(promise))
            }
        }
    }

    /// Finishes the pending choice in `slot` with outcome 0 ok, 1 failure, 2 declined,
    /// 3 cancelled, and latency in ms (negative = unknown). Returns false if the slot holds no
    /// pending choice.
    #[napi]
    pub fn finish(&self, slot: f64, outcome: u32, latency_ms: f64) -> bool {
        let Some(choice) = lock(&self.table).take(slot) else {
            return false;
        };
        let outcome = match outcome {
            1 => Outcome::Failure,
            2 => Outcome::Declined,
            3 => Outcome::Cancelled,
            _ => Outcome::Ok,
        };
        let latency = (latency_ms.is_finite() && latency_ms >= 0.0)
            .then(|| Duration::from_secs_f64(latency_ms.min(1e12) / 1000.0));
        choice.finish(outcome, latency);
        true
    }

    /// The peer id with index `index` (from a choose result), or null.
    #[napi]
    pub fn peer_name(&self, index: u32) -> Option<String> {
        let table = lock(&self.table);
        let i = (index as usize).checked_sub(1)?;
        table.names.get(i).map(|p| p.to_string())
    }

    /// The peer of the pending choice in `slot`, or null.
    #[napi]
    pub fn peer_of(&self, slot: f64) -> Option<String> {
        let table = lock(&self.table);
        if !(slot >= 0.0 && slot < table.slots.len() as f64) {
            return None;
        }
        table.slots[slot as usize]
            .as_ref()
            .map(|c| c.peer().to_string())
    }

    /// The list's introspection as JSON.
    #[napi]
    pub fn introspect(&self) -> String {
        self.list.introspect().to_json()
    }

    /// Whether the list is running.
    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.list.is_running()
    }
}

/// The handle a transport reports a peer's status through (handed to `retain`).
#[napi]
pub struct Subscriber {
    pub(crate) inner: peerlb::Subscriber,
}

#[napi]
impl Subscriber {
    /// Reports `'available'`, `'connecting'` or `'unavailable'`. Returns true if the list
    /// took the report, false if it was stale (peer released, list gone).
    #[napi(ts_args_type = "status: 'available' | 'connecting' | 'unavailable'")]
    pub fn set_status(&self, env: Env, status: Unknown) -> napi::Result<bool> {
        if status.get_type()? != ValueType::String {
            return Err(js::type_error(
                &env,
                "subscriber.setStatus(status): status must be a string",
            ));
        }
        let s: String = unsafe { js::string_value(env.raw(), status.raw()) }.unwrap_or_default();
        let status: ConnectionStatus = s.parse().map_err(|e| js::throw(&env, &e))?;
        let _scope = EnvScope::enter(env.raw());
        Ok(self.inner.set_status(status))
    }

    /// The id of the peer this subscriber reports on (null once the peer is gone).
    #[napi(getter)]
    pub fn peer_id(&self) -> Option<String> {
        self.inner.peer_id().map(|p| p.to_string())
    }
}

/// Does nothing: the baseline "empty call into the addon" for benchmarks.
#[napi]
pub fn noop() {}

/// The core library's version.
#[napi]
pub fn core_version() -> String {
    peerlb::VERSION.to_string()
}

/// Every core error code as `[kebab, node]` pairs, e.g. `['timeout', 'PEERLB_TIMEOUT']`.
#[napi]
pub fn error_codes() -> Vec<Vec<String>> {
    peerlb::ErrorCode::ALL
        .iter()
        .map(|c| vec![c.as_str().to_string(), js::node_code(*c)])
        .collect()
}
