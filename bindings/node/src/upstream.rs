//! `NativeUpstream`: the core `peerlb::Upstream` for Node (the public `Upstream` of
//! `index.js` extends it). A JS check is called on the JS thread through an unref'd
//! thread-safe function: the invoker object's `invoke(backend, token)` runs the user's
//! check (sync or async) and reports with `upstreamCheckDone(token, ok)`. A check that
//! never reports times out like any other.
//!
//! The invoker is held *weakly* (the JS `Upstream` holds it), so a check that refers to its
//! upstream does not keep it alive forever; once collected, the upstream shuts down.

use std::collections::HashMap;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, ThreadId};

use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{AsyncTask, Either, Null, Object, Unknown};
use napi::{sys, Env, JsValue, Task};
use napi_derive::napi;
use peerlb::upstream::CheckFuture;
use peerlb::{HealthCheck, Upstream, UpstreamOptions as CoreOptions};
use tokio::sync::oneshot;

use crate::convert::{self, Given, Strings};
use crate::transport::{referenced_tsfn, EnvScope, TsfnState};
use crate::{guard, js};

type Reply = oneshot::Sender<Result<(), String>>;

fn pending() -> &'static Mutex<HashMap<u32, Reply>> {
    static PENDING: OnceLock<Mutex<HashMap<u32, Reply>>> = OnceLock::new();
    PENDING.get_or_init(Default::default)
}

fn finish(token: u32, result: Result<(), String>) {
    let tx = pending()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&token);
    if let Some(tx) = tx {
        let _ = tx.send(result);
    }
}

/// Ends a JS check: `ok`, or a failure with `message`. Unknown tokens (timed out) are ignored.
#[napi]
pub fn upstream_check_done(token: u32, ok: bool, message: String) {
    finish(token, if ok { Ok(()) } else { Err(message) });
}

/// Removes a token whose check future was dropped (timed out) before JS answered.
struct TokenGuard(u32);

impl Drop for TokenGuard {
    fn drop(&mut self) {
        pending()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

struct JsCheck {
    env: usize,
    owner: ThreadId,
    object: usize, // napi_ref of the wrapper object
    tsfn: Arc<TsfnState>,
}

impl JsCheck {
    /// # Safety
    /// On the JS thread with the env of the current call and a live object.
    unsafe fn new(env: &Env, object: sys::napi_value) -> napi::Result<JsCheck> {
        let raw_env = env.raw();
        let (reference, state) =
            referenced_tsfn(raw_env, object, "peerlb-upstream-check", "check")?;
        // Weak: the JS Upstream holds its invoker (see the module docs).
        let mut count = 0;
        sys::napi_reference_unref(raw_env, reference, &mut count);
        Ok(JsCheck {
            env: raw_env as usize,
            owner: thread::current().id(),
            object: reference as usize,
            tsfn: state,
        })
    }

    fn run(self: &Arc<Self>, backend: String) -> CheckFuture {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let token = NEXT.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        pending()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, tx);
        let guard = TokenGuard(token);
        let me = self.clone();
        let posted = self.tsfn.post(Box::new(move |env| match env {
            None => finish(token, Err("the JS environment is shutting down".into())),
            Some(env) => {
                let _scope = EnvScope::enter(env);
                if let Err(m) = unsafe { me.invoke(env, &backend, token) } {
                    finish(token, Err(m));
                }
            }
        }));
        if !posted {
            finish(token, Err("cannot reach the JS thread".into()));
        }
        Box::pin(async move {
            let _guard = guard;
            rx.await
                .unwrap_or_else(|_| Err("the check was dropped".into()))
        })
    }

    unsafe fn invoke(&self, env: sys::napi_env, backend: &str, token: u32) -> Result<(), String> {
        let mut object = ptr::null_mut();
        sys::napi_get_reference_value(env, self.object as sys::napi_ref, &mut object);
        if object.is_null() {
            return Err("the check object is gone".into());
        }
        let mut func = ptr::null_mut();
        if sys::napi_get_named_property(env, object, c"invoke".as_ptr(), &mut func)
            != sys::Status::napi_ok
        {
            return Err(js::take_exception(env).unwrap_or_else(|| "cannot read invoke".into()));
        }
        let mut tok = ptr::null_mut();
        sys::napi_create_uint32(env, token, &mut tok);
        let args = [js::string(env, backend), tok];
        let mut ret = ptr::null_mut();
        let status = sys::napi_call_function(env, object, func, 2, args.as_ptr(), &mut ret);
        if status != sys::Status::napi_ok {
            return Err(js::take_exception(env)
                .map(|m| format!("JS check threw: {m}"))
                .unwrap_or_else(|| format!("calling JS failed (napi status {status})")));
        }
        Ok(())
    }
}

impl Drop for JsCheck {
    fn drop(&mut self) {
        let state = self.tsfn.clone();
        if !state.is_alive() {
            return; // the environment is torn down; Node frees the reference itself
        }
        let object = self.object;
        if thread::current().id() == self.owner {
            unsafe {
                sys::napi_delete_reference(self.env as sys::napi_env, object as sys::napi_ref)
            };
        } else {
            state.post(Box::new(move |env| {
                if let Some(env) = env {
                    unsafe { sys::napi_delete_reference(env, object as sys::napi_ref) };
                }
            }));
        }
        let handle = state
            .handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            unsafe {
                sys::napi_release_threadsafe_function(
                    handle as sys::napi_threadsafe_function,
                    sys::ThreadsafeFunctionReleaseMode::release,
                )
            };
        }
    }
}

/// Options of `new Upstream(options)` (besides `check`); not given: the core's defaults
/// (go-loadbalancer's).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct UpstreamOptions {
    /// Backends (usually 'host:port'), in round-robin order.
    #[napi(ts_type = "ReadonlyArray<string> | null")]
    pub backends: Option<Strings>,
    /// Time between check rounds (default 1000).
    pub interval_ms: Option<Either<f64, Null>>,
    /// Time one check may take before it counts as failed (default 100).
    pub timeout_ms: Option<Either<f64, Null>>,
    /// No background rounds; run them with checkNow() (default false).
    pub manual: Option<bool>,
    /// Score of a new backend (default 1).
    pub initial_score: Option<Either<f64, Null>>,
    /// Lowest score, <= 0 (default -3).
    pub low_score: Option<Either<f64, Null>>,
    /// Highest score, >= 0 (default 3).
    pub high_score: Option<Either<f64, Null>>,
    /// Added on a failed check or down(), < 0 (default -1).
    pub fail_delta: Option<Either<f64, Null>>,
    /// Added on a good check or up(), > 0 (default 1).
    pub success_delta: Option<Either<f64, Null>>,
}

impl UpstreamOptions {
    fn into_core(self, env: &Env) -> napi::Result<CoreOptions> {
        let mut o = CoreOptions::default();
        let ms = |what: &str, v: f64| {
            convert::millis(v).map_err(|m| convert::invalid(env, &format!("Upstream: {what}"), m))
        };
        if let Some(v) = self.interval_ms.given() {
            o.health_check_interval = Some(ms("intervalMs", v)?);
        }
        if let Some(v) = self.timeout_ms.given() {
            o.health_check_timeout = ms("timeoutMs", v)?;
        }
        if self.manual == Some(true) {
            o = o.manual();
        }
        let numbers = [
            (self.initial_score, &mut o.initial_score),
            (self.low_score, &mut o.low_score),
            (self.high_score, &mut o.high_score),
            (self.fail_delta, &mut o.fail_delta),
            (self.success_delta, &mut o.success_delta),
        ];
        for (given, field) in numbers {
            if let Some(v) = given.given() {
                *field = v;
            }
        }
        Ok(o)
    }
}

/// A score-based list of backends (after go-loadbalancer's upstream); use `Upstream`.
#[napi]
pub struct NativeUpstream {
    inner: Arc<Upstream>,
}

/// Runs one check round on a libuv worker, so that JS checks can run meanwhile.
pub struct CheckNow(Arc<Upstream>);

impl Task for CheckNow {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> napi::Result<()> {
        let up = &self.0;
        let _ = guard::caught(|| {
            up.check_now();
            Ok(())
        });
        Ok(())
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}

fn backend(env: &Env, v: Unknown, what: &str) -> napi::Result<String> {
    unsafe { convert::arg(env.raw(), v.raw(), what) }
}

#[napi]
impl NativeUpstream {
    /// `new NativeUpstream(options, check, invoker)`: `check` is `'tcp-probe'` (or nothing)
    /// for the TCP probe; `invoker` (`{invoke(backend, token)}`) runs a JS check instead.
    #[napi(
        constructor,
        ts_args_type = "options?: UpstreamOptions, check?: string | null, invoker?: object | null"
    )]
    pub fn new(
        env: Env,
        options: Option<Unknown>,
        check: Option<Unknown>,
        invoker: Option<Object>,
    ) -> napi::Result<Self> {
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: UpstreamOptions =
            unsafe { convert::options(env.raw(), raw, "new Upstream(options)")? };
        let backends = o.backends.clone().unwrap_or_default().0;
        let options = o.into_core(&env)?;
        let hc = match invoker {
            Some(i) => {
                let c = Arc::new(unsafe { JsCheck::new(&env, i.raw())? });
                HealthCheck::Async(Arc::new(move |b| c.run(b)))
            }
            None => {
                match check.map(|c| unsafe { (js::type_of(env.raw(), c.raw()), c) }) {
                    None => {}
                    Some((sys::ValueType::napi_undefined | sys::ValueType::napi_null, _)) => {}
                    Some((sys::ValueType::napi_string, c)) => {
                        let name =
                            unsafe { js::string_value(env.raw(), c.raw()) }.unwrap_or_default();
                        if name != "tcp-probe" {
                            return Err(convert::invalid(
                                &env,
                                "new Upstream: check",
                                format!(
                                    "{name:?} is unknown; expected \"tcp-probe\" or a function"
                                ),
                            ));
                        }
                    }
                    Some((_, c)) => {
                        return Err(js::type_error(
                            &env,
                            &format!(
                                "new Upstream: check must be \"tcp-probe\" or a function, got {}",
                                unsafe { js::describe_arg(env.raw(), c.raw()) }
                            ),
                        ))
                    }
                }
                HealthCheck::default()
            }
        };
        let up = guard::call(&env, || Upstream::new(backends, hc, options))?;
        Ok(NativeUpstream {
            inner: Arc::new(up),
        })
    }

    /// The next backend with a score >= 0 (PEERLB_NO_PEER_AVAILABLE when none).
    #[napi]
    pub fn pick(&self, env: Env) -> napi::Result<String> {
        guard::call(&env, || self.inner.pick())
    }

    /// Moves the backend's score up by successDelta (capped at highScore).
    #[napi(ts_args_type = "backend: string")]
    pub fn up(&self, env: Env, backend: Unknown) -> napi::Result<()> {
        let b = self::backend(&env, backend, "up(backend): backend")?;
        guard::call(&env, || {
            self.inner.up(&b);
            Ok(())
        })
    }

    /// Moves the backend's score down by failDelta (capped at lowScore).
    #[napi(ts_args_type = "backend: string")]
    pub fn down(&self, env: Env, backend: Unknown) -> napi::Result<()> {
        let b = self::backend(&env, backend, "down(backend): backend")?;
        guard::call(&env, || {
            self.inner.down(&b);
            Ok(())
        })
    }

    /// Replaces the backends; those that stay keep their score.
    #[napi(ts_args_type = "backends: ReadonlyArray<string>")]
    pub fn reconcile(&self, env: Env, backends: Unknown) -> napi::Result<()> {
        let b: Strings = unsafe { convert::arg(env.raw(), backends.raw(), "reconcile(backends)")? };
        guard::call(&env, || self.inner.reconcile(b.0))
    }

    /// The backend's score, or undefined.
    #[napi(ts_args_type = "backend: string")]
    pub fn score(&self, env: Env, backend: Unknown) -> napi::Result<Either<f64, ()>> {
        let b = self::backend(&env, backend, "score(backend): backend")?;
        let score = guard::call(&env, || Ok(self.inner.score(&b)))?;
        Ok(score.map_or(Either::B(()), Either::A))
    }

    /// `{backend: score}` in list order.
    #[napi(ts_return_type = "Record<string, number>")]
    pub fn scores(&self, env: Env) -> napi::Result<Object<'_>> {
        let mut out = Object::new(&env)?;
        for (b, s) in guard::call(&env, || Ok(self.inner.scores()))? {
            if !out.has_own_property(&b)? {
                out.set(&b, s)?;
            }
        }
        Ok(out)
    }

    /// The backends in list order.
    #[napi(getter)]
    pub fn backends(&self, env: Env) -> napi::Result<Vec<String>> {
        guard::call(&env, || Ok(self.inner.backends()))
    }

    /// Runs one check round now; resolves when every check ended or timed out.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn check_now(&self) -> AsyncTask<CheckNow> {
        AsyncTask::new(CheckNow(self.inner.clone()))
    }

    /// Stops the health checks (pick/up/down/reconcile keep working).
    #[napi]
    pub fn shutdown(&self, env: Env) -> napi::Result<()> {
        guard::call(&env, || {
            self.inner.shutdown();
            Ok(())
        })
    }
}
