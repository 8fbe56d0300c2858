//! Retries for JS: `NativeRetry` drives one core `peerlb::retry::Retry` step by step for the
//! wrapper's `PeerList.retry(fn, options)` loop: `choose` the next attempt's peer (at once,
//! or a Promise when the list has no available peer yet), then report the attempt with
//! `succeeded`, `failed` or `declined`. Every rule (attempt limit, timeout, budget, untried
//! peers first, error messages) is the core's.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, Unknown};
use napi::{sys, Env, JsValue, ValueType};
use napi_derive::napi;
use peerlb::retry::{Retry, RetryBudget, RetryPolicy};
use peerlb::{Choice, Request};

use crate::transport::EnvScope;
use crate::{js, timeout_of, NativeClock, NativeList};

/// A retry budget shared by `retry` calls (wrapped by `RetryBudget` in index.js).
#[napi]
pub struct NativeRetryBudget {
    inner: Arc<RetryBudget>,
}

#[napi]
impl NativeRetryBudget {
    /// `new NativeRetryBudget(ratio, minPerSec, ttlMs, clock | null)`; the core checks the
    /// ranges (ratio 0..=1, ttl 1 s..=60 s).
    #[napi(constructor)]
    pub fn new(
        env: Env,
        ratio: f64,
        min_per_sec: u32,
        ttl_ms: f64,
        clock: Option<&NativeClock>,
    ) -> napi::Result<Self> {
        let clock = clock.map_or_else(peerlb::Clock::real, |c| c.inner.clone().into());
        let ttl = if ttl_ms.is_finite() && ttl_ms >= 0.0 {
            Duration::from_secs_f64((ttl_ms / 1000.0).min(1e12))
        } else {
            Duration::MAX
        };
        RetryBudget::new(ratio, min_per_sec, ttl, clock)
            .map(|inner| NativeRetryBudget { inner })
            .map_err(|e| js::throw(&env, &e))
    }

    /// Retries the budget would allow right now.
    #[napi(getter)]
    pub fn balance(&self) -> f64 {
        self.inner.balance() as f64
    }
}

/// The retry between steps, and the current attempt's choice.
#[derive(Default)]
struct State {
    /// `None` while an asynchronous choose owns it.
    retry: Option<Retry>,
    current: Option<Choice>,
}

/// One retried call (internal; use `PeerList.retry` from `index.js`).
#[napi]
pub struct NativeRetry {
    list: peerlb::PeerList,
    state: Arc<Mutex<State>>,
}

type ChooseFuture = Pin<Box<dyn Future<Output = (Retry, peerlb::Result<Choice>)> + Send>>;

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
}

fn latency(ms: f64) -> Option<Duration> {
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms.min(1e12) / 1000.0))
}

#[napi]
impl NativeRetry {
    /// `new NativeRetry(list, maxAttempts, timeoutMs (negative = none), budget | null)`.
    #[napi(constructor)]
    pub fn new(
        list: &NativeList,
        max_attempts: u32,
        timeout_ms: f64,
        budget: Option<&NativeRetryBudget>,
    ) -> Self {
        let mut policy = RetryPolicy::new(max_attempts);
        if let Some(t) = timeout_of(timeout_ms) {
            policy = policy.timeout(t);
        }
        if let Some(b) = budget {
            policy = policy.budget(b.inner.clone());
        }
        NativeRetry {
            list: list.entry.list.clone(),
            state: Arc::new(Mutex::new(State {
                retry: Some(Retry::new(&policy)),
                current: None,
            })),
        }
    }

    /// Attempts made so far.
    #[napi(getter)]
    pub fn attempts(&self) -> u32 {
        self.lock().retry.as_ref().map_or(0, Retry::attempts)
    }

    /// Chooses the next attempt's peer (preferring untried ones): the peer id at once, or a
    /// Promise of the peer id or of an `Error` when it must wait. Throws (or resolves to) the
    /// call's final error when no attempt may start (limit, timeout, budget).
    #[napi(
        ts_args_type = "shardKey?: string | Uint8Array | null",
        ts_return_type = "string | Promise<string | Error>"
    )]
    pub fn choose(&self, env: Env, shard_key: Option<Unknown>) -> napi::Result<Chosen> {
        let key = match shard_key {
            None => None,
            Some(k) => match k.get_type()? {
                ValueType::Undefined | ValueType::Null => None,
                ValueType::String => {
                    unsafe { js::string_value(env.raw(), k.raw()) }.map(String::into_bytes)
                }
                _ => Some(
                    unsafe {
                        napi::bindgen_prelude::Uint8Array::from_napi_value(env.raw(), k.raw())
                    }
                    .map_err(|_| {
                        js::type_error(&env, "retry: shardKey must be a string or a Uint8Array")
                    })?
                    .to_vec(),
                ),
            },
        };
        let (retry, pending) = {
            let mut st = self.lock();
            (st.retry.take(), st.current.take())
        };
        // An attempt left unreported ends as cancelled.
        drop(pending);
        let Some(mut retry) = retry else {
            return Err(js::throw(
                &env,
                &peerlb::Error::InvalidArgument("retry.choose: a choose is already waiting".into()),
            ));
        };
        let list = self.list.clone();
        let mut fut: ChooseFuture = Box::pin(async move {
            let mut req = Request::new();
            if let Some(k) = &key {
                req = req.with_shard_key(k);
            }
            let result = retry.choose_async(&list, &req).await;
            (retry, result)
        });
        let waker = crate::noop_waker();
        let rt = peerlb::runtime::handle();
        let first = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _enter = rt.enter();
            fut.as_mut().poll(&mut Context::from_waker(&waker))
        }));
        match first {
            Err(p) => Err(js::throw(
                &env,
                &peerlb::Error::InvalidArgument(peerlb::panic_message(p.as_ref())),
            )),
            Ok(Poll::Ready((retry, result))) => {
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
            Ok(Poll::Pending) => {
                let (deferred, promise) = env.create_deferred()?;
                let state = self.state.clone();
                rt.spawn(async move {
                    let (retry, result) = fut.await;
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
        let (choice, mut retry) = self.current(&env, "succeeded")?;
        let _scope = EnvScope::enter(env.raw());
        retry.succeeded(choice, latency(latency_ms));
        self.lock().retry = Some(retry);
        Ok(())
    }

    /// The current attempt failed with `message` (counts toward the peer's ejection).
    #[napi]
    pub fn failed(&self, env: Env, message: String, latency_ms: f64) -> napi::Result<()> {
        let (choice, mut retry) = self.current(&env, "failed")?;
        let _scope = EnvScope::enter(env.raw());
        retry.failed(choice, message, latency(latency_ms));
        self.lock().retry = Some(retry);
        Ok(())
    }

    /// The peer declined the current attempt: throws the call's final `declined` error.
    #[napi]
    pub fn declined(&self, env: Env, message: String, latency_ms: f64) -> napi::Result<()> {
        let (choice, mut retry) = self.current(&env, "declined")?;
        let err = {
            let _scope = EnvScope::enter(env.raw());
            retry.declined(choice, message, latency(latency_ms))
        };
        self.lock().retry = Some(retry);
        Err(js::throw(&env, &err))
    }
}
