//! `NativeUpstream`: the core `peerlb::Upstream` for Node. A JS check is called on the JS
//! thread through an unref'd thread-safe function: the wrapper object's
//! `invoke(backend, token)` runs the user's check (sync or async) and reports with
//! `upstreamCheckDone(token, ok)`. A check that never reports times out like any other.

use std::collections::HashMap;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, ThreadId};
use std::time::Duration;

use napi::bindgen_prelude::{AsyncTask, Object};
use napi::{sys, Env, JsValue, Task};
use napi_derive::napi;
use peerlb::upstream::CheckFuture;
use peerlb::{HealthCheck, Upstream, UpstreamOptions};
use tokio::sync::oneshot;

use crate::js;
use crate::transport::{referenced_tsfn, EnvScope, TsfnState};

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

/// The core `Upstream` (wrapped by `Upstream` in index.js, which validates arguments).
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
        self.0.check_now();
        Ok(())
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}

fn ms(v: f64) -> Duration {
    Duration::try_from_secs_f64(v / 1000.0).unwrap_or(Duration::MAX)
}

#[napi]
impl NativeUpstream {
    /// `new NativeUpstream(backends, check ({invoke(backend, token)}) | null = TCP probe,
    /// intervalMs (0 = manual), timeoutMs, initialScore, lowScore, highScore, failDelta, successDelta)`.
    #[napi(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        env: Env,
        backends: Vec<String>,
        check: Option<Object>,
        interval_ms: f64,
        timeout_ms: f64,
        initial_score: f64,
        low_score: f64,
        high_score: f64,
        fail_delta: f64,
        success_delta: f64,
    ) -> napi::Result<Self> {
        let options = UpstreamOptions {
            health_check_interval: (interval_ms != 0.0).then(|| ms(interval_ms)),
            health_check_timeout: ms(timeout_ms),
            initial_score,
            low_score,
            high_score,
            fail_delta,
            success_delta,
        };
        options.validate().map_err(|e| js::throw(&env, &e))?;
        for b in &backends {
            if b.is_empty() || b.len() > peerlb::MAX_PEER_ID_LEN || b.contains('\0') {
                return Err(js::throw(
                    &env,
                    &peerlb::Error::InvalidArgument(format!(
                        "backend {b:?} must be 1..=1024 bytes without NUL"
                    )),
                ));
            }
        }
        let hc = match check {
            None => HealthCheck::TcpProbe,
            Some(o) => {
                let c = Arc::new(unsafe { JsCheck::new(&env, o.raw())? });
                HealthCheck::Async(Arc::new(move |b| c.run(b)))
            }
        };
        let up = Upstream::new(backends, hc, options).map_err(|e| js::throw(&env, &e))?;
        Ok(NativeUpstream {
            inner: Arc::new(up),
        })
    }

    /// The next backend with a score >= 0.
    #[napi]
    pub fn pick(&self, env: Env) -> napi::Result<String> {
        self.inner.pick().map_err(|e| js::throw(&env, &e))
    }

    /// Score up by the success delta.
    #[napi]
    pub fn up(&self, backend: String) {
        self.inner.up(&backend)
    }

    /// Score down by the fail delta.
    #[napi]
    pub fn down(&self, backend: String) {
        self.inner.down(&backend)
    }

    /// Replaces the backends (validated by index.js).
    #[napi]
    pub fn reconcile(&self, env: Env, backends: Vec<String>) -> napi::Result<()> {
        for b in &backends {
            if b.is_empty() || b.len() > peerlb::MAX_PEER_ID_LEN || b.contains('\0') {
                return Err(js::throw(
                    &env,
                    &peerlb::Error::InvalidArgument(format!(
                        "backend {b:?} must be 1..=1024 bytes without NUL"
                    )),
                ));
            }
        }
        self.inner.reconcile(backends);
        Ok(())
    }

    /// The backend's score, or undefined.
    #[napi]
    pub fn score(&self, backend: String) -> Option<f64> {
        self.inner.score(&backend)
    }

    /// The backends in list order.
    #[napi]
    pub fn backends(&self) -> Vec<String> {
        self.inner.backends()
    }

    /// The scores, in the order of `backends()`.
    #[napi]
    pub fn score_values(&self) -> Vec<f64> {
        self.inner.scores().into_iter().map(|(_, s)| s).collect()
    }

    /// One health-check round; resolves when it is over.
    #[napi]
    pub fn check_now(&self) -> AsyncTask<CheckNow> {
        AsyncTask::new(CheckNow(self.inner.clone()))
    }

    /// Stops the health checks.
    #[napi]
    pub fn shutdown(&self) {
        self.inner.shutdown()
    }
}
