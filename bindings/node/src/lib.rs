//! The native half of the Node package `peerlb`: a napi-rs addon over the `peerlb` core.
//!
//! JS code uses the wrapper in `index.js` (argument checking, `Choice` objects, Promises);
//! this addon is its internal `_native` layer. It is kept small and cheap to call: options
//! arrive as positional primitives, and a choice crosses the boundary as one number (a slot in
//! a per-list table of pending choices plus an index into a per-list table of peer ids), so a
//! `choose` + `finish` costs two plain calls.
#![deny(clippy::all)]

mod events;
mod js;
mod retry;
mod transport;
mod updater;
pub mod upstream;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use napi::bindgen_prelude::{Object, ToNapiValue, Unknown};
use napi::JsValue;
use napi::{sys, Env, ValueType};
use napi_derive::napi;
use peerlb::admin::AdminOp;
use peerlb::{ConnectionStatus, EjectionPolicy, ListOptions, Outcome, PeerId, Request};

use crate::transport::{EnvScope, JsTransport};

/// Peer ids get a small index the first time they are chosen; past this many distinct ids the
/// index 0 ("ask `peerOf(slot)`") is used instead.
const MAX_INTERNED: usize = 1 << 16;
/// 2^32: a choose result is `slot + index * 2^32`.
const SLOT_SPAN: f64 = 4_294_967_296.0;

/// The Fx hash (as in rustc): peer ids are short, SipHash would cost more than the rest of
/// the lookup. The keys come from this process's own lists, so no hash flooding concern.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.write(&[b]);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Pending choices of one list, by slot, plus the peer-id table.
#[derive(Default)]
struct Table {
    slots: Vec<Option<peerlb::Choice>>,
    free: Vec<u32>,
    ids: HashMap<PeerId, u32, BuildHasherDefault<FxHasher>>,
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

/// One list as the hot-path functions see it.
struct Entry {
    /// Unique per list ever made (ids are reused).
    serial: u64,
    list: peerlb::PeerList,
    table: RefCell<Table>,
}

/// This JS thread's lists by id. The hot-path functions (`choose0`, `choose`, `finish`) are
/// plain functions taking the id: a napi-rs class method pays for unwrapping and borrow
/// tracking of `this` (~200 ns), a thread-local lookup costs a few.
#[derive(Default)]
struct Registry {
    entries: Vec<Option<Rc<Entry>>>,
    free: Vec<u32>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = const {
        RefCell::new(Registry {
            entries: Vec::new(),
            free: Vec::new(),
        })
    };
}

/// Runs `f` with the entry of list `id` (None if there is no such list on this thread).
/// `f` must not call JS (nothing may re-enter the registry meanwhile).
fn with_entry<R>(id: u32, f: impl FnOnce(&Entry) -> R) -> Option<R> {
    REGISTRY.with(|r| {
        let r = r.borrow();
        let e = r.entries.get(id as usize)?.as_ref()?;
        Some(f(e))
    })
}

fn no_such_list(id: u32) -> peerlb::Error {
    peerlb::Error::InvalidArgument(format!("no peer list with handle {id} on this thread"))
}

/// The native peer list (internal; use `PeerList` from `index.js`).
#[napi]
pub struct NativeList {
    id: u32,
    entry: Rc<Entry>,
    /// The core subscription feeding the wrapper's event dispatcher (see `listen`).
    subscription: RefCell<Option<peerlb::Subscription>>,
}

impl Drop for NativeList {
    fn drop(&mut self) {
        REGISTRY.with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                if let Some(slot) = r.entries.get_mut(self.id as usize) {
                    *slot = None;
                    r.free.push(self.id);
                }
            }
        });
    }
}

pub(crate) fn timeout_of(ms: f64) -> Option<Duration> {
    if ms.is_nan() || ms < 0.0 {
        None
    } else if ms > 1e12 {
        Some(Duration::from_secs(86_400 * 365 * 30))
    } else {
        Some(Duration::from_secs_f64(ms / 1000.0))
    }
}

pub(crate) fn noop_waker() -> Waker {
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
    id: u32,
    serial: u64,
}

impl ToNapiValue for AsyncResult {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let (id, serial) = (val.id, val.serial);
        let result = val.result.and_then(|choice| {
            // The choice is dropped (cancelled) if its list is gone.
            with_entry(id, move |e| {
                (e.serial == serial).then(|| e.table.borrow_mut().insert(choice))
            })
            .flatten()
            .ok_or_else(|| peerlb::Error::NotStarted("the peer list was garbage-collected".into()))
        });
        match result {
            Ok(n) => f64::to_napi_value(env, n),
            Err(e) => Ok(js::error_value(env, &e)),
        }
    }
}

type ChooseFuture = Pin<Box<dyn Future<Output = Result<peerlb::Choice, peerlb::Error>> + Send>>;

#[napi]
impl NativeList {
    /// `new NativeList(strategy, shuffle, seed ("" = none, else decimal u64), failFast, transport | null, transportName,
    /// ejectionOff, ejectionKeys, ejectionValues, clock | null)`;
    /// with `transport` null, a non-empty `transportName` is a built-in transport spec.
    /// The ejection policy is the core default with each `EjectionPolicy::set(key, value)`
    /// applied (keys `failures`, `base_ms`, `max_ms`, `max_percent`, `panic_percent`), or
    /// none when `ejectionOff`.
    #[napi(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        env: Env,
        strategy: String,
        shuffle: bool,
        seed: String,
        fail_fast: bool,
        transport: Option<Object>,
        transport_name: String,
        ejection_off: bool,
        ejection_keys: Vec<String>,
        ejection_values: Vec<String>,
        clock: Option<&NativeClock>,
    ) -> napi::Result<Self> {
        let mut opts = ListOptions::default().shuffle(shuffle).fail_fast(fail_fast);
        if ejection_off {
            opts = opts.ejection(None);
        } else {
            let mut policy = EjectionPolicy::default();
            for (k, v) in ejection_keys.iter().zip(&ejection_values) {
                policy.set(k, v).map_err(|e| js::throw(&env, &e))?;
            }
            opts = opts.ejection(Some(policy));
        }
        if let Some(c) = clock {
            opts = opts.clock(peerlb::Clock::from(c.inner.clone()));
        }
        if !seed.is_empty() {
            let seed: u64 = seed.parse().map_err(|_| {
                js::throw(
                    &env,
                    &peerlb::Error::InvalidArgument(format!("seed {seed:?} is not a u64")),
                )
            })?;
            opts = opts.seed(seed);
        }
        opts = opts
            .strategy_name(&strategy)
            .map_err(|e| js::throw(&env, &e))?;
        if let Some(t) = transport {
            let t = unsafe { JsTransport::new(&env, t.raw(), transport_name)? };
            opts = opts.transport(Arc::new(t));
        } else if !transport_name.is_empty() {
            // No JS object: `transportName` is a built-in transport spec.
            let t =
                peerlb::transport_from_spec(&transport_name).map_err(|e| js::throw(&env, &e))?;
            opts = opts.transport(t);
        }
        let list = peerlb::PeerList::new(opts).map_err(|e| js::throw(&env, &e))?;
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let entry = Rc::new(Entry {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            list,
            table: RefCell::default(),
        });
        let id = REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            match r.free.pop() {
                Some(id) => {
                    r.entries[id as usize] = Some(entry.clone());
                    id
                }
                None => {
                    r.entries.push(Some(entry.clone()));
                    (r.entries.len() - 1) as u32
                }
            }
        });
        Ok(NativeList {
            id,
            entry,
            subscription: RefCell::new(None),
        })
    }

    /// Sends the list's peer events to `dispatcher(kind, peer, detail)` (replacing any
    /// previous dispatcher). It is held weakly: keep it alive as long as the list.
    #[napi(ts_args_type = "dispatcher: (kind: string, peer: string, detail: string) => void")]
    pub fn listen(&self, env: Env, dispatcher: Unknown) -> napi::Result<()> {
        if dispatcher.get_type()? != ValueType::Function {
            return Err(js::type_error(
                &env,
                "listen(dispatcher): dispatcher must be a function",
            ));
        }
        let events = unsafe { events::JsEvents::new(env.raw(), dispatcher.raw())? };
        let subscription = self.entry.list.subscribe(move |e| events.on_event(e));
        // Dropping the previous subscription (if any) unsubscribes it.
        let _previous = self.subscription.replace(Some(subscription));
        Ok(())
    }

    /// Admin `action` ('disable', 'enable', 'reset', 'delete') on peer `id`: returns
    /// 'success' or 'no-action-required'; throws for failed (PEERLB_PEER_NOT_IN_LIST,
    /// PEERLB_INVALID_ARGUMENT).
    #[napi]
    pub fn admin(&self, env: Env, action: String, id: String) -> napi::Result<String> {
        let Some(op) = AdminOp::from_name(&action) else {
            return Err(js::throw(
                &env,
                &peerlb::Error::InvalidArgument(format!(
                    "unknown admin action {action:?}; expected disable, enable, reset or delete"
                )),
            ));
        };
        let _scope = EnvScope::enter(env.raw());
        let list = &self.entry.list;
        let result = match op {
            AdminOp::Disable => list.disable(&id),
            AdminOp::Enable => list.enable(&id),
            AdminOp::Reset => list.reset(&id),
            AdminOp::Delete => list.delete(&id),
        };
        result
            .map(|r| r.as_str().to_string())
            .map_err(|e| js::throw(&env, &e))
    }

    /// The handle of this list for the hot-path functions (`choose0`, `choose`, `finish`).
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
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
        self.entry
            .list
            .update(adds, remove)
            .map_err(|e| js::throw(&env, &e))
    }

    /// Starts the list (retains every peer).
    #[napi]
    pub fn start(&self, env: Env) -> napi::Result<()> {
        let _scope = EnvScope::enter(env.raw());
        self.entry.list.start().map_err(|e| js::throw(&env, &e))
    }

    /// Stops the list (releases every peer).
    #[napi]
    pub fn stop(&self, env: Env) -> napi::Result<()> {
        let _scope = EnvScope::enter(env.raw());
        self.entry.list.stop().map_err(|e| js::throw(&env, &e))
    }

    /// The peer id with index `index` (from a choose result), or null.
    #[napi]
    pub fn peer_name(&self, index: u32) -> Option<String> {
        let table = self.entry.table.borrow();
        let i = (index as usize).checked_sub(1)?;
        table.names.get(i).map(|p| p.to_string())
    }

    /// The peer of the pending choice in `slot`, or null.
    #[napi]
    pub fn peer_of(&self, slot: f64) -> Option<String> {
        let table = self.entry.table.borrow();
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
        self.entry.list.introspect().to_json()
    }

    /// Whether the list is running.
    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.entry.list.is_running()
    }
}

/// A manual (test) clock: stands still until `advance`; due ejection restorations run
/// inside `advance`.
#[napi]
pub struct NativeClock {
    pub(crate) inner: peerlb::ManualClock,
}

#[napi]
impl NativeClock {
    /// A manual clock reading the current instant.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NativeClock {
            inner: peerlb::ManualClock::new(),
        }
    }

    /// Moves the clock forward by `ms` (validated by index.js) and runs the timers that came
    /// due (their events reach subscribers before this returns).
    #[napi]
    pub fn advance(&self, env: Env, ms: f64) {
        let by = if ms.is_finite() && ms > 0.0 {
            Duration::from_secs_f64((ms / 1000.0).min(1e12))
        } else {
            Duration::ZERO
        };
        let _scope = EnvScope::enter(env.raw());
        self.inner.advance(by);
    }

    /// How far it has been advanced, in milliseconds.
    #[napi(getter)]
    pub fn elapsed_ms(&self) -> f64 {
        self.inner.elapsed().as_secs_f64() * 1000.0
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

    /// The id of the peer this subscriber reports on.
    #[napi(getter)]
    pub fn peer_id(&self) -> String {
        self.inner.peer_id().to_string()
    }
}

fn request<'k>(timeout_ms: f64, key: Option<&'k [u8]>) -> Request<'k> {
    let mut req = Request::new();
    if let Some(t) = timeout_of(timeout_ms) {
        req = req.with_timeout(t);
    }
    if let Some(k) = key {
        req = req.with_shard_key(k);
    }
    req
}

fn finish_in(id: u32, slot: f64, outcome: u32, latency_ms: f64) -> bool {
    let Some(Some(choice)) = with_entry(id, |e| e.table.borrow_mut().take(slot)) else {
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

// The two hot-path functions are plain N-API callbacks: napi-rs's generated wrappers set up
// borrow-tracking scopes per call (~150 ns with arguments), which would dominate a
// choose + finish. Arguments come from index.js, already checked; a wrong type here reads as
// an unknown list or slot (an error or `false`), never undefined behaviour.

unsafe fn args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> [sys::napi_value; N] {
    let mut argc = N;
    let mut argv = [std::ptr::null_mut(); N];
    sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    if argc < N {
        let mut undef = std::ptr::null_mut();
        sys::napi_get_undefined(env, &mut undef);
        for a in argv.iter_mut().skip(argc) {
            *a = undef;
        }
    }
    argv
}

unsafe fn get_u32(env: sys::napi_env, v: sys::napi_value, default: u32) -> u32 {
    let mut out = default;
    if sys::napi_get_value_uint32(env, v, &mut out) != sys::Status::napi_ok {
        return default;
    }
    out
}

unsafe fn get_f64(env: sys::napi_env, v: sys::napi_value, default: f64) -> f64 {
    let mut out = default;
    if sys::napi_get_value_double(env, v, &mut out) != sys::Status::napi_ok {
        return default;
    }
    out
}

/// `choose0(id)`: chooses from list `id` with no deadline and no shard key; returns the
/// encoded choice (`slot + peerIndex * 2^32`).
unsafe extern "C" fn raw_choose0(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let [id] = args::<1>(env, info);
    let id = get_u32(env, id, u32::MAX);
    let result = std::panic::catch_unwind(|| {
        with_entry(id, |e| {
            e.list
                .choose(&Request::new())
                .map(|c| e.table.borrow_mut().insert(c))
        })
        .unwrap_or_else(|| Err(no_such_list(id)))
    })
    .unwrap_or_else(|p| {
        Err(peerlb::Error::InvalidArgument(peerlb::panic_message(
            p.as_ref(),
        )))
    });
    let mut out = std::ptr::null_mut();
    match result {
        Ok(n) => {
            sys::napi_create_double(env, n, &mut out);
        }
        Err(e) => {
            sys::napi_throw(env, js::error_value(env, &e));
        }
    }
    out
}

/// `finish(id, slot, outcome, latencyMs)`: finishes the pending choice in `slot` of list
/// `id` with outcome 0 ok, 1 failure, 2 declined, 3 cancelled, and latency in ms (negative =
/// unknown). Returns false if the slot holds no pending choice.
unsafe extern "C" fn raw_finish(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let [id, slot, outcome, latency] = args::<4>(env, info);
    let id = get_u32(env, id, u32::MAX);
    let slot = get_f64(env, slot, -1.0);
    let outcome = get_u32(env, outcome, 0);
    let latency = get_f64(env, latency, -1.0);
    // A failure may eject the peer: its event reaches JS subscribers before this returns.
    let _scope = EnvScope::enter(env);
    let done = std::panic::catch_unwind(|| finish_in(id, slot, outcome, latency)).unwrap_or(false);
    let mut out = std::ptr::null_mut();
    sys::napi_get_boolean(env, done, &mut out);
    out
}

/// Reads `(id, timeoutMs, shardKey)`: shardKey is a string, a Uint8Array or undefined.
unsafe fn choose_args(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> (u32, f64, Option<Vec<u8>>) {
    let [id, timeout, key] = args::<3>(env, info);
    let id = get_u32(env, id, u32::MAX);
    let timeout = get_f64(env, timeout, -1.0);
    let mut ty = 0;
    sys::napi_typeof(env, key, &mut ty);
    let key = if ty == sys::ValueType::napi_string {
        js::string_value(env, key).map(String::into_bytes)
    } else if ty == sys::ValueType::napi_object {
        let mut is_ta = false;
        sys::napi_is_typedarray(env, key, &mut is_ta);
        let (mut kind, mut len, mut data) = (0, 0usize, std::ptr::null_mut());
        if is_ta
            && sys::napi_get_typedarray_info(
                env,
                key,
                &mut kind,
                &mut len,
                &mut data,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ) == sys::Status::napi_ok
            && kind == sys::TypedarrayType::uint8_array
        {
            Some(if len == 0 || data.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(data as *const u8, len).to_vec()
            })
        } else {
            None
        }
    } else {
        None
    };
    (id, timeout, key)
}

unsafe fn throw_value(env: sys::napi_env, e: &peerlb::Error) -> sys::napi_value {
    sys::napi_throw(env, js::error_value(env, e));
    std::ptr::null_mut()
}

/// `choose(id, timeoutMs, shardKey)`: chooses from list `id`, blocking up to `timeoutMs`
/// when no peer is available (negative = no deadline); returns the encoded choice.
unsafe extern "C" fn raw_choose(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let (id, timeout, key) = choose_args(env, info);
    let req = request(timeout, key.as_deref());
    let result = std::panic::catch_unwind(|| {
        with_entry(id, |e| {
            e.list.choose(&req).map(|c| e.table.borrow_mut().insert(c))
        })
        .unwrap_or_else(|| Err(no_such_list(id)))
    })
    .unwrap_or_else(|p| {
        Err(peerlb::Error::InvalidArgument(peerlb::panic_message(
            p.as_ref(),
        )))
    });
    match result {
        Ok(n) => {
            let mut out = std::ptr::null_mut();
            sys::napi_create_double(env, n, &mut out);
            out
        }
        Err(e) => throw_value(env, &e),
    }
}

/// `chooseAsync(id, timeoutMs, shardKey)`: chooses without blocking. Returns the encoded
/// choice at once when a peer is available (or throws at once when the core fails at once),
/// else a Promise of the encoded choice or of an `Error` (the wrapper rejects with it).
unsafe extern "C" fn raw_choose_async(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let (id, timeout_ms, key) = choose_args(env, info);
    let Some((list, serial)) = with_entry(id, |e| (e.list.clone(), e.serial)) else {
        return throw_value(env, &no_such_list(id));
    };
    let timeout = timeout_of(timeout_ms);
    let mut fut: ChooseFuture = Box::pin(async move {
        let req = request(
            timeout.map_or(-1.0, |t| t.as_secs_f64() * 1000.0),
            key.as_deref(),
        );
        list.choose_async(&req).await
    });
    let waker = noop_waker();
    // The core's async wait creates its deadline timer in the calling context, which must be
    // inside a tokio runtime: enter the library's own for this first poll.
    let rt = peerlb::runtime::handle();
    let first = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let _enter = rt.enter();
        fut.as_mut().poll(&mut Context::from_waker(&waker))
    }))
    .unwrap_or_else(|p| {
        Poll::Ready(Err(peerlb::Error::InvalidArgument(peerlb::panic_message(
            p.as_ref(),
        ))))
    });
    let mut out = std::ptr::null_mut();
    match first {
        Poll::Ready(Ok(choice)) => {
            let n = with_entry(id, |e| e.table.borrow_mut().insert(choice)).unwrap_or(-1.0);
            sys::napi_create_double(env, n, &mut out);
            out
        }
        Poll::Ready(Err(e)) => throw_value(env, &e),
        Poll::Pending => {
            let env_ = Env::from_raw(env);
            let (deferred, promise) = match env_.create_deferred() {
                Ok(d) => d,
                Err(e) => {
                    return throw_value(
                        env,
                        &peerlb::Error::InvalidArgument(format!("cannot create a promise: {e}")),
                    )
                }
            };
            rt.spawn(async move {
                let result = fut.await;
                deferred.resolve(move |_env| Ok(AsyncResult { result, id, serial }));
            });
            promise.raw()
        }
    }
}

/// `noopRaw()`: an empty plain N-API callback, for benchmarks.
unsafe extern "C" fn raw_noop(
    env: sys::napi_env,
    _info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut out = std::ptr::null_mut();
    sys::napi_get_undefined(env, &mut out);
    out
}

/// Adds the plain N-API functions to the module's exports.
#[napi(module_exports)]
pub fn init(exports: Object, env: Env) -> napi::Result<()> {
    let raw: [(&std::ffi::CStr, sys::napi_callback); 5] = [
        (c"choose0", Some(raw_choose0)),
        (c"choose", Some(raw_choose)),
        (c"chooseAsync", Some(raw_choose_async)),
        (c"finish", Some(raw_finish)),
        (c"noopRaw", Some(raw_noop)),
    ];
    for (name, cb) in raw {
        let mut f = std::ptr::null_mut();
        unsafe {
            napi::check_status!(sys::napi_create_function(
                env.raw(),
                name.as_ptr(),
                name.to_bytes().len() as isize,
                cb,
                std::ptr::null_mut(),
                &mut f,
            ))?;
            napi::check_status!(sys::napi_set_named_property(
                env.raw(),
                exports.raw(),
                name.as_ptr(),
                f
            ))?;
        }
    }
    Ok(())
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
