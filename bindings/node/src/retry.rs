//! Retries for JS: `NativeRetry` drives one core `peerlb::retry::Retry` step by step for the
//! wrapper's `PeerList.retry(fn, options)` loop: `choose` the next attempt's peer (at once,
//! or a Promise when the list has no available peer yet), then report the attempt with
//! `succeeded`, `failed` or `declined`. Every rule (attempt limit, timeout, budget, untried
//! peers first, error messages, defaults) is the core's.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{
    ClassInstance, Either, Either3, FromNapiValue, Null, ToNapiValue, Uint8Array, Unknown,
};
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use peerlb::retry::{
    Retry, RetryBudget as CoreBudget, RetryBudgetOptions as CoreBudgetOptions, RetryPolicy,
};
use peerlb::{Choice, NowOrLater, Request};

use crate::convert::{self, Given};
use crate::list::NativeList;
use crate::list_options::clock_arg;
use crate::{guard, js};

/// Options of `new RetryBudget(options)`; not given: the core's defaults.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct RetryBudgetOptions<'a> {
    /// Retries per call allowed, 0..1 (default 0.2).
    pub ratio: Option<f64>,
    /// Retries per second always allowed, a whole number (default 10).
    pub min_per_sec: Option<f64>,
    /// The sliding window, 1000..60000 ms (default 10000).
    pub ttl_ms: Option<f64>,
    /// Default the real clock.
    #[napi(ts_type = "ManualClock | 'real' | null")]
    pub clock: Option<Unknown<'a>>,
}

/// A retry budget shared by `retry` calls: over a sliding window of `ttlMs`, retries may be
/// at most `minPerSec × ttl + ratio × calls` (Finagle's and Envoy's budget).
#[napi]
pub struct RetryBudget {
    inner: Arc<CoreBudget>,
}

impl RetryBudget {
    /// The core budget (shared by the request rules given this budget).
    pub(crate) fn core(&self) -> &Arc<CoreBudget> {
        &self.inner
    }
}

#[napi]
impl RetryBudget {
    /// A budget; see `RetryBudgetOptions`.
    #[napi(constructor, ts_args_type = "options?: RetryBudgetOptions")]
    pub fn new(env: Env, options: Option<Unknown>) -> napi::Result<Self> {
        let what = "new RetryBudget(options)";
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: RetryBudgetOptions = unsafe { convert::options(env.raw(), raw, what)? };
        let min_per_sec = o
            .min_per_sec
            .map(|n| convert::whole(n, u32::MAX as u64).map(|n| n as u32))
            .transpose()
            .map_err(|m| convert::invalid(&env, "new RetryBudget: minPerSec", m))?;
        let ttl = o
            .ttl_ms
            .map(convert::millis)
            .transpose()
            .map_err(|m| convert::invalid(&env, "new RetryBudget: ttlMs", m))?;
        let clock = match o.clock {
            Some(c) => unsafe { clock_arg(env.raw(), c.raw(), "new RetryBudget: clock")? },
            None => None,
        };
        let options = CoreBudgetOptions {
            ratio: o.ratio,
            min_per_sec,
            ttl,
        };
        guard::call(&env, || {
            CoreBudget::from_options(&options, clock.unwrap_or_else(peerlb::Clock::real))
        })
        .map(|inner| RetryBudget { inner })
    }

    /// Retries the budget would allow right now.
    #[napi(getter)]
    pub fn balance(&self, env: Env) -> napi::Result<f64> {
        guard::call(&env, || Ok(self.inner.balance() as f64))
    }
}

/// Options of `PeerList.retry(fn, options)`; not given: the core's defaults.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct RetryOptions<'a> {
    /// Attempts in all, the first included (a whole number >= 1, default 3).
    pub max_attempts: Option<Either<f64, Null>>,
    /// The whole call's time limit: checked before each retry, bounds each wait for a peer.
    pub timeout_ms: Option<Either<f64, Null>>,
    /// Retries also need this budget's permission.
    #[napi(ts_type = "RetryBudget | null")]
    pub budget: Option<Unknown<'a>>,
    /// The first attempt's shard key (retries vary it, so hash strategies pick other peers).
    pub shard_key: Option<Either3<String, Uint8Array, Null>>,
}

/// The retry between steps, and the current attempt's choice.
#[derive(Default)]
struct State {
    /// `None` while an asynchronous choose owns it.
    retry: Option<Retry>,
    current: Option<Choice>,
}

/// One retried call (internal; use `PeerList.retry`).
#[napi]
pub struct NativeRetry {
    list: peerlb::PeerList,
    key: Option<Vec<u8>>,
    state: Arc<Mutex<State>>,
}

/// What `choose` gives JS: the peer at once, or a Promise of the peer or of an `Error`.
pub enum Chosen {
    Peer(String),
    Promise(sys::napi_value),
}

impl ToNapiValue for Chosen {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val {
            Chosen::Peer(p) => String::to_napi_value(env, p),
            Chosen::Promise(p) => Ok(p),
        }
    }
}

/// An asynchronous choose's result, turned into a peer id (or an `Error`) on the JS thread.
struct Resolved {
    state: Arc<Mutex<State>>,
    retry: Retry,
    result: peerlb::Result<Choice>,
}

impl ToNapiValue for Resolved {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut st = val.state.lock().unwrap_or_else(|e| e.into_inner());
        st.retry = Some(val.retry);
        match val.result {
            Ok(choice) => {
                let peer = choice.peer().to_string();
                st.current = Some(choice);
                String::to_napi_value(env, peer)
            }
            Err(e) => Ok(js::error_value(env, &e)),
        }
    }
}

impl NativeRetry {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self, env: &Env, what: &str) -> napi::Result<(Choice, Retry)> {
        let mut st = self.lock();
        match (st.current.take(), st.retry.take()) {
            (Some(c), Some(r)) => Ok((c, r)),
            (c, r) => {
                st.current = c;
                st.retry = r;
                Err(js::throw(
                    env,
                    &peerlb::Error::InvalidArgument(format!(
                        "retry.{what}: no attempt in progress (choose first)"
                    )),
                ))
            }
        }
    }

    /// Reports the current attempt with `f`, which hands back the retry (or not).
    fn report(
        &self,
        env: &Env,
        what: &str,
        f: impl FnOnce(Choice, &mut Retry) -> peerlb::Result<()>,
    ) -> napi::Result<()> {
        let (choice, mut retry) = self.current(env, what)?;
        let result = guard::call(env, || f(choice, &mut retry));
        self.lock().retry = Some(retry);
        result
    }
}

fn latency(ms: f64) -> Option<std::time::Duration> {
    convert::millis(ms).ok()
}

/// A remote system's code from JS: a whole number in the safe-integer range, else none
/// (what an attempt's error carries in `remoteCode` is the user's, so anything else is
/// ignored rather than refused).
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub(crate) unsafe fn remote_code_of(env: sys::napi_env, v: sys::napi_value) -> Option<i64> {
    if js::type_of(env, v) != sys::ValueType::napi_number {
        return None;
    }
    let mut n = 0.0;
    sys::napi_get_value_double(env, v, &mut n);
    (n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0).then_some(n as i64)
}

#[napi]
impl NativeRetry {
    /// `new NativeRetry(list, options)`; see `RetryOptions`.
    #[napi(constructor, ts_args_type = "list: NativeList, options?: RetryOptions")]
    pub fn new(env: Env, list: &NativeList, options: Option<Unknown>) -> napi::Result<Self> {
        let what = "retry(fn, options)";
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: RetryOptions = unsafe { convert::options(env.raw(), raw, what)? };
        let mut policy = RetryPolicy::default();
        if let Some(n) = o.max_attempts.given() {
            let n = convert::whole(n, u32::MAX as u64).map_err(|_| {
                convert::invalid(
                    &env,
                    "retry: maxAttempts",
                    format!("must be an integer in 1..=4294967295, got {n}"),
                )
            })?;
            policy = policy
                .with_max_attempts(n as u32)
                .map_err(|e| js::throw(&env, &e))?;
        }
        if let Some(t) = o.timeout_ms.given() {
            let t =
                convert::millis(t).map_err(|m| convert::invalid(&env, "retry: timeoutMs", m))?;
            policy = policy.timeout(t);
        }
        if let Some(b) = o.budget {
            match unsafe { js::type_of(env.raw(), b.raw()) } {
                sys::ValueType::napi_undefined | sys::ValueType::napi_null => {}
                _ => {
                    let budget: ClassInstance<RetryBudget> =
                        unsafe { ClassInstance::from_napi_value(env.raw(), b.raw()) }.map_err(
                            |_| js::type_error(&env, "retry: budget must be a RetryBudget"),
                        )?;
                    policy = policy.budget(budget.inner.clone());
                }
            }
        }
        let key = match o.shard_key.given() {
            Some(Either::A(s)) => Some(s.into_bytes()),
            Some(Either::B(b)) => Some(b.to_vec()),
            None => None,
        };
        Ok(NativeRetry {
            list: list.core().clone(),
            key,
            state: Arc::new(Mutex::new(State {
                retry: Some(Retry::new(&policy)),
                current: None,
            })),
        })
    }

    /// Attempts made so far.
    #[napi(getter)]
    pub fn attempts(&self, env: Env) -> napi::Result<u32> {
        guard::call(&env, || {
            Ok(self.lock().retry.as_ref().map_or(0, Retry::attempts))
        })
    }

    /// Chooses the next attempt's peer (preferring untried ones): the peer id at once, or a
    /// Promise of the peer id or of an `Error` when it must wait. Throws (or resolves to) the
    /// call's final error when no attempt may start (limit, timeout, budget).
    #[napi(ts_return_type = "string | Promise<string | Error>")]
    pub fn choose(&self, env: Env) -> napi::Result<Chosen> {
        let (retry, pending) = {
            let mut st = self.lock();
            (st.retry.take(), st.current.take())
        };
        // An attempt left unreported ends as cancelled.
        drop(pending);
        let Some(retry) = retry else {
            return Err(js::throw(
                &env,
                &peerlb::Error::InvalidArgument("retry.choose: a choose is already waiting".into()),
            ));
        };
        let mut req = Request::new();
        if let Some(k) = &self.key {
            req = req.with_shard_key(k);
        }
        // The retry is moved into the core call; a panic loses it (the call is over).
        let first = guard::call(&env, || Ok(retry.choose_now(&self.list, &req)))?;
        match first {
            NowOrLater::Now((retry, result)) => {
                let mut st = self.lock();
                st.retry = Some(retry);
                match result {
                    Ok(choice) => {
                        let peer = choice.peer().to_string();
                        st.current = Some(choice);
                        Ok(Chosen::Peer(peer))
                    }
                    Err(e) => {
                        drop(st);
                        Err(js::throw(&env, &e))
                    }
                }
            }
            NowOrLater::Later(later) => {
                let (deferred, promise) = env.create_deferred()?;
                let state = self.state.clone();
                peerlb::runtime::handle().spawn(async move {
                    let (retry, result) = later.await;
                    deferred.resolve(move |_env| {
                        Ok(Resolved {
                            state,
                            retry,
                            result,
                        })
                    });
                });
                Ok(Chosen::Promise(promise.raw()))
            }
        }
    }

    /// The current attempt succeeded (`latencyMs` negative = unknown).
    #[napi]
    pub fn succeeded(&self, env: Env, latency_ms: f64) -> napi::Result<()> {
        self.report(&env, "succeeded", |c, r| {
            r.succeeded(c, latency(latency_ms));
            Ok(())
        })
    }

    /// The current attempt failed with `message` (counts toward the peer's ejection);
    /// `remoteCode`, the remote system's own code (e.g. an HTTP status), if a number.
    #[napi(ts_args_type = "message: string, latencyMs: number, remoteCode?: unknown")]
    pub fn failed(
        &self,
        env: Env,
        message: String,
        latency_ms: f64,
        remote_code: Option<Unknown>,
    ) -> napi::Result<()> {
        let code = remote_code.and_then(|c| unsafe { remote_code_of(env.raw(), c.raw()) });
        self.report(&env, "failed", |c, r| {
            r.failed_with_code(c, message, code, latency(latency_ms));
            Ok(())
        })
    }

    /// The peer declined the current attempt: throws the call's final `declined` error
    /// (with `peer` and `remoteCode`).
    #[napi(ts_args_type = "message: string, latencyMs: number, remoteCode?: unknown")]
    pub fn declined(
        &self,
        env: Env,
        message: String,
        latency_ms: f64,
        remote_code: Option<Unknown>,
    ) -> napi::Result<()> {
        let code = remote_code.and_then(|c| unsafe { remote_code_of(env.raw(), c.raw()) });
        self.report(&env, "declined", |c, r| {
            Err(r.declined_with_code(c, message, code, latency(latency_ms)))
        })
    }
}
