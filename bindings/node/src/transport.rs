//! A `peerlb::Transport` backed by a JS object with `retain(peerId, subscriber)` and
//! `release(peerId, subscriber)` methods.
//!
//! The core calls a transport synchronously on the thread that called `update`, `start` or
//! `stop`. In Node that is the JS thread, inside one of this binding's methods, so the binding
//! records the current `napi_env` in a thread-local ([`EnvScope`]) around every call into the
//! core, and the transport calls the JS function directly. A blocking thread-safe-function call
//! there would deadlock.
//!
//! Calls from anywhere else go through an *unref'd* thread-safe function (it never keeps the
//! process alive):
//! * from another thread (e.g. the last handle of a running list dropped on a library thread):
//!   posted to the JS thread; the caller waits for the result;
//! * from the JS thread outside a binding call (a garbage-collection finalizer dropping a
//!   running list): posted to run later, not waited for (a `release` then reports `Ok`).
//!
//! If the environment is gone (process or worker exiting), the call fails with a message
//! instead of running.
//!
//! The transport object is held *weakly*: the JS `PeerList` that owns the list holds it
//! strongly. A transport that refers to its list (a property, a closure) then forms a cycle
//! the garbage collector can see through, so such a list is collected like any other. A
//! transport collected together with its list is not called any more (its peers' release
//! is skipped: nothing is left to observe it); `stop()` a list to release deterministically.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, ThreadId};

use napi::bindgen_prelude::JavaScriptClassExt;
use napi::{sys, Env};
use peerlb::{PeerId, Subscriber, Transport};

use crate::js;

thread_local! {
    static CURRENT_ENV: Cell<usize> = const { Cell::new(0) };
}

/// Marks "this thread is inside a binding call with this env" until dropped (nestable).
pub struct EnvScope {
    prev: usize,
}

impl EnvScope {
    /// Enters the scope for `env`.
    pub fn enter(env: sys::napi_env) -> EnvScope {
        let prev = CURRENT_ENV.with(|c| c.replace(env as usize));
        EnvScope { prev }
    }
}

/// Whether this thread is inside a binding call with `env` (so JS may be called directly).
pub(crate) fn in_scope(env: sys::napi_env) -> bool {
    CURRENT_ENV.with(Cell::get) == env as usize
}

impl Drop for EnvScope {
    fn drop(&mut self) {
        CURRENT_ENV.with(|c| c.set(self.prev));
    }
}

pub(crate) type Job = Box<dyn FnOnce(Option<sys::napi_env>) + Send>;

/// The thread-safe function's handle; `None` once Node finalized it (env teardown).
pub(crate) struct TsfnState {
    pub(crate) handle: Mutex<Option<usize>>,
}

impl TsfnState {
    /// Queues `job` for the JS thread. Returns false (dropping the job) if that cannot be done.
    pub(crate) fn post(&self, job: Job) -> bool {
        let guard = self.handle.lock().unwrap_or_else(|e| e.into_inner());
        let Some(handle) = *guard else {
            return false;
        };
        let data = Box::into_raw(Box::new(job));
        let status = unsafe {
            sys::napi_call_threadsafe_function(
                handle as sys::napi_threadsafe_function,
                data as *mut c_void,
                sys::ThreadsafeFunctionCallMode::nonblocking,
            )
        };
        if status != sys::Status::napi_ok {
            drop(unsafe { Box::from_raw(data) });
            return false;
        }
        true
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

pub(crate) unsafe extern "C" fn call_job(
    env: sys::napi_env,
    _js_callback: sys::napi_value,
    _context: *mut c_void,
    data: *mut c_void,
) {
    if data.is_null() {
        return;
    }
    let job = unsafe { Box::from_raw(data as *mut Job) };
    let env = (!env.is_null()).then_some(env);
    let _ = catch_unwind(AssertUnwindSafe(move || job(env)));
}

pub(crate) unsafe extern "C" fn tsfn_finalized(
    _env: sys::napi_env,
    data: *mut c_void,
    _hint: *mut c_void,
) {
    let state = unsafe { Arc::from_raw(data as *const TsfnState) };
    *state.handle.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// A raw `napi_ref` (only ever touched on its env's JS thread).
#[derive(Clone, Copy)]
struct RawRef(usize);

struct Inner {
    name: String,
    env: usize,
    owner: ThreadId,
    object: RawRef,
    /// The JS subscriber object handed to `retain`, by core subscriber, so that `release`
    /// gets the very same object.
    subscribers: Mutex<HashMap<usize, RawRef>>,
    tsfn: Arc<TsfnState>,
}

/// A transport whose `retain`/`release` are methods of a JS object.
#[derive(Clone)]
pub struct JsTransport {
    inner: Arc<Inner>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Retain,
    Release,
}

impl Op {
    fn method(self) -> &'static CStr {
        match self {
            Op::Retain => c"retain",
            Op::Release => c"release",
        }
    }
}

/// A reference to `object` plus an unref'd thread-safe function (running [`call_job`]) for
/// reaching the JS thread from library threads; it never keeps the process alive. `what`
/// names the owner in the error message.
///
/// # Safety
/// Call on the JS thread with the env of the current call and a live object.
pub(crate) unsafe fn referenced_tsfn(
    raw_env: sys::napi_env,
    object: sys::napi_value,
    name: &str,
    what: &str,
) -> napi::Result<(sys::napi_ref, Arc<TsfnState>)> {
    let mut reference = ptr::null_mut();
    napi::check_status!(sys::napi_create_reference(
        raw_env,
        object,
        1,
        &mut reference
    ))?;
    let state = Arc::new(TsfnState {
        handle: Mutex::new(None),
    });
    let finalize_data = Arc::into_raw(state.clone()) as *mut c_void;
    let mut tsfn = ptr::null_mut();
    let status = sys::napi_create_threadsafe_function(
        raw_env,
        ptr::null_mut(),
        ptr::null_mut(),
        js::string(raw_env, name),
        0,
        1,
        finalize_data,
        Some(tsfn_finalized),
        ptr::null_mut(),
        Some(call_job),
        &mut tsfn,
    );
    if status != sys::Status::napi_ok {
        drop(Arc::from_raw(finalize_data as *const TsfnState));
        sys::napi_delete_reference(raw_env, reference);
        return Err(napi::Error::from_reason(format!(
            "cannot create a thread-safe function for the {what}"
        )));
    }
    sys::napi_unref_threadsafe_function(raw_env, tsfn);
    *state.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some(tsfn as usize);
    Ok((reference, state))
}

impl JsTransport {
    /// Wraps a JS transport object: it must have `retain` and `release` functions; its
    /// `name` (a non-empty string, else `'custom'`) is read once, here.
    ///
    /// # Safety
    /// Call on the JS thread with the env of the current call and a live object.
    pub unsafe fn new(env: &Env, object: sys::napi_value) -> napi::Result<Self> {
        let raw_env = env.raw();
        let what = "new PeerList: transport";
        for method in [c"retain", c"release"] {
            let f = crate::convert::property(raw_env, object, method)
                .map_err(|e| crate::convert::throw_conversion(raw_env, what, e))?;
            if js::type_of(raw_env, f) != sys::ValueType::napi_function {
                return Err(js::type_error(
                    env,
                    "new PeerList: transport must be a transport spec string (e.g. \"tcp-probe\") or an object with retain(peerId, subscriber) and release(peerId, subscriber) methods",
                ));
            }
        }
        let name = crate::convert::property(raw_env, object, c"name")
            .map_err(|e| crate::convert::throw_conversion(raw_env, what, e))?;
        let name = match js::type_of(raw_env, name) {
            sys::ValueType::napi_string => js::string_value(raw_env, name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "custom".into()),
            _ => "custom".into(),
        };
        let (reference, state) = referenced_tsfn(raw_env, object, "peerlb-transport", "transport")?;
        // Weak: the JS PeerList holds the transport (see the module docs).
        let mut count = 0;
        sys::napi_reference_unref(raw_env, reference, &mut count);
        Ok(JsTransport {
            inner: Arc::new(Inner {
                name,
                env: raw_env as usize,
                owner: thread::current().id(),
                object: RawRef(reference as usize),
                subscribers: Mutex::new(HashMap::new()),
                tsfn: state,
            }),
        })
    }

    /// The transport object, unless it was collected.
    ///
    /// # Safety
    /// On the JS thread, with the env of the current call.
    pub unsafe fn object(&self, env: sys::napi_env) -> Option<sys::napi_value> {
        if env as usize != self.inner.env {
            return None;
        }
        let v = ref_value(env, self.inner.object);
        (!v.is_null()).then_some(v)
    }

    fn dispatch(&self, op: Op, id: &PeerId, sub: &Subscriber) -> Result<(), String> {
        let inner = &self.inner;
        if thread::current().id() == inner.owner {
            if CURRENT_ENV.with(Cell::get) == inner.env {
                return unsafe { inner.call(inner.env as sys::napi_env, op, id, sub) };
            }
            // On the JS thread but not inside a binding call (a GC finalizer): never block here.
            let (me, id2, sub2) = (inner.clone(), id.clone(), sub.clone());
            let posted = inner.tsfn.post(Box::new(move |env| {
                if let Some(env) = env {
                    let _scope = EnvScope::enter(env);
                    let _ = unsafe { me.call(env, op, &id2, &sub2) };
                }
            }));
            return match (op, posted) {
                (Op::Release, _) => Ok(()),
                (Op::Retain, _) => Err(
                    "a JS transport can only retain peers from a call made on its JS thread".into(),
                ),
            };
        }
        let (tx, rx) = mpsc::channel();
        let (me, id2, sub2) = (inner.clone(), id.clone(), sub.clone());
        inner.tsfn.post(Box::new(move |env| {
            let result = match env {
                Some(env) => {
                    let _scope = EnvScope::enter(env);
                    unsafe { me.call(env, op, &id2, &sub2) }
                }
                None => Err("the JS environment is shutting down".into()),
            };
            let _ = tx.send(result);
        }));
        rx.recv()
            .unwrap_or_else(|_| Err("the JS environment of this transport is gone".into()))
    }
}

impl Inner {
    /// Calls `transport.retain/release(id, subscriber)` on the JS thread.
    unsafe fn call(
        &self,
        env: sys::napi_env,
        op: Op,
        id: &PeerId,
        sub: &Subscriber,
    ) -> Result<(), String> {
        let key = sub.as_ptr() as usize;
        // The subscriber object: the one given to retain, or a new one.
        let existing = match op {
            Op::Release => self.take_subscriber(key),
            Op::Retain => None,
        };
        let sub_value = match existing {
            Some(r) => {
                let v = ref_value(env, r);
                sys::napi_delete_reference(env, r.0 as sys::napi_ref);
                v
            }
            None => new_subscriber(env, sub)?,
        };
        if op == Op::Retain {
            let mut r = ptr::null_mut();
            sys::napi_create_reference(env, sub_value, 1, &mut r);
            self.subscribers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, RawRef(r as usize));
        }
        let result = self.invoke(env, op, id, sub_value);
        if op == Op::Retain && result.is_err() {
            // retain failed: the peer is not added, forget its subscriber.
            if let Some(r) = self.take_subscriber(key) {
                sys::napi_delete_reference(env, r.0 as sys::napi_ref);
            }
        }
        result
    }

    fn take_subscriber(&self, key: usize) -> Option<RawRef> {
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
    }

    unsafe fn invoke(
        &self,
        env: sys::napi_env,
        op: Op,
        id: &PeerId,
        sub_value: sys::napi_value,
    ) -> Result<(), String> {
        let object = ref_value(env, self.object);
        if object.is_null() {
            // Collected with its list (see the module docs): nothing left to call.
            return match op {
                Op::Release => Ok(()),
                Op::Retain => Err("the transport object was garbage-collected".into()),
            };
        }
        let mut func = ptr::null_mut();
        if sys::napi_get_named_property(env, object, op.method().as_ptr(), &mut func)
            != sys::Status::napi_ok
        {
            return Err(js::take_exception(env).unwrap_or_else(|| {
                format!("cannot read transport.{}", op.method().to_str().unwrap())
            }));
        }
        let mut ty = 0;
        sys::napi_typeof(env, func, &mut ty);
        if ty != sys::ValueType::napi_function {
            return Err(format!(
                "transport.{} is not a function",
                op.method().to_str().unwrap_or("?")
            ));
        }
        let args = [js::string(env, id.as_str()), sub_value];
        let mut ret = ptr::null_mut();
        let status = sys::napi_call_function(env, object, func, 2, args.as_ptr(), &mut ret);
        if status != sys::Status::napi_ok {
            return Err(js::take_exception(env)
                .map(|m| format!("JS {} threw: {m}", op.method().to_str().unwrap_or("?")))
                .unwrap_or_else(|| format!("calling JS failed (napi status {status})")));
        }
        Ok(())
    }
}

unsafe fn ref_value(env: sys::napi_env, r: RawRef) -> sys::napi_value {
    let mut v = ptr::null_mut();
    sys::napi_get_reference_value(env, r.0 as sys::napi_ref, &mut v);
    v
}

unsafe fn new_subscriber(env: sys::napi_env, sub: &Subscriber) -> Result<sys::napi_value, String> {
    let env = Env::from_raw(env);
    crate::subscriber::Subscriber { inner: sub.clone() }
        .into_instance(&env)
        .map(|i| i.value)
        .map_err(|e| format!("cannot create the subscriber object: {e}"))
}

impl Transport for JsTransport {
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        self.dispatch(Op::Retain, id, subscriber)
    }

    fn release(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        self.dispatch(Op::Release, id, subscriber)
    }

    fn name(&self) -> &str {
        &self.inner.name
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut refs: Vec<RawRef> = self
            .subscribers
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, r)| r)
            .collect();
        refs.push(self.object);
        let state = self.tsfn.clone();
        if !state.is_alive() {
            // The environment is torn down; Node frees the references itself.
            return;
        }
        if thread::current().id() == self.owner {
            let env = self.env as sys::napi_env;
            for r in refs {
                unsafe { sys::napi_delete_reference(env, r.0 as sys::napi_ref) };
            }
        } else {
            state.post(Box::new(move |env| {
                if let Some(env) = env {
                    for r in refs {
                        unsafe { sys::napi_delete_reference(env, r.0 as sys::napi_ref) };
                    }
                }
            }));
        }
        let mut guard = state.handle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = guard.take() {
            unsafe {
                sys::napi_release_threadsafe_function(
                    handle as sys::napi_threadsafe_function,
                    sys::ThreadsafeFunctionReleaseMode::release,
                )
            };
        }
    }
}
