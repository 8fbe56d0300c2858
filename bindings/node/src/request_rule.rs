//! The request rule for JS: `RequestRule` (the core's `RequestRule`, configured once) and
//! `NativeRequestCall`, one HTTP request under it, which the integrations (`peerlb/undici`,
//! `peerlb/http`) drive: choose a peer, send, report what happened. Which outcome, whether
//! to retry, the latency, the budget: every decision is the core's.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{
    ClassInstance, Either, Either3, FromNapiValue, Null, ToNapiValue, Unknown,
};
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use peerlb::request_rule::{
    peer_address, AttemptResult, RequestCall, RequestInfo, RequestRule as CoreRule,
    RequestRuleOptions as CoreOptions, RuleBudget, StatusSet, StopReason,
};
use peerlb::{Choice, NowOrLater, Request};

use crate::convert::{self, Given};
use crate::list::NativeList;
use crate::retry::RetryBudget;
use crate::{guard, js};

/// Options of `new RequestRule(options)`; not given: the core's defaults.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct RequestRuleOptions<'a> {
    /// The statuses that count as a failure of the peer: codes and ranges as a string
    /// (`'502-504,429'`) or an array of codes (default every 5xx, `'500-599'`).
    pub failure_statuses: Option<Either3<String, Vec<f64>, Null>>,
    /// Attempts in all, the first included (1..=100, default 3).
    pub max_attempts: Option<Either<f64, Null>>,
    /// The whole request's time limit in ms: no retry starts after it, each wait for a
    /// peer ends by it, each attempt's timeout is capped by what is left (default none).
    pub timeout_ms: Option<Either<f64, Null>>,
    /// A `RetryBudget` to share, or `false` for none (default: a budget of the rule's own,
    /// 20 % of requests + 10 retries per second over 10 s).
    #[napi(ts_type = "RetryBudget | false | null")]
    pub budget: Option<Unknown<'a>>,
    /// Retry every method as if idempotent (default false: GET, HEAD, OPTIONS, TRACE, PUT,
    /// DELETE, and requests that never connected).
    pub retry_any_method: Option<Either<bool, Null>>,
}

/// The rule every HTTP integration applies: connect errors, resets, timeouts and
/// `failureStatuses` are failures of the peer, other statuses ok; a failure is retried on
/// another peer for idempotent methods (or any method with `retryAnyMethod`, or a request
/// that never connected), a body that can be sent again, attempts left, the overall
/// timeout not passed and the retry budget agreeing.
#[napi]
pub struct RequestRule {
    inner: CoreRule,
}

#[napi]
impl RequestRule {
    /// A rule; see `RequestRuleOptions`.
    #[napi(constructor, ts_args_type = "options?: RequestRuleOptions")]
    pub fn new(env: Env, options: Option<Unknown>) -> napi::Result<Self> {
        let what = "new RequestRule(options)";
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: RequestRuleOptions = unsafe { convert::options(env.raw(), raw, what)? };
        let failure_statuses = match o.failure_statuses.given() {
            None => None,
            Some(Either::A(spec)) => {
                Some(spec.parse::<StatusSet>().map_err(|e| js::throw(&env, &e))?)
            }
            Some(Either::B(codes)) => {
                let codes = codes
                    .into_iter()
                    .map(|c| convert::whole(c, u16::MAX as u64).map(|c| c as u16))
                    .collect::<Result<Vec<u16>, String>>()
                    .map_err(|m| {
                        convert::invalid(&env, "new RequestRule: failureStatuses items", m)
                    })?;
                Some(StatusSet::from_codes(codes).map_err(|e| js::throw(&env, &e))?)
            }
        };
        let max_attempts = o
            .max_attempts
            .given()
            .map(|n| convert::whole(n, u32::MAX as u64).map(|n| n as u32))
            .transpose()
            .map_err(|m| convert::invalid(&env, "new RequestRule: maxAttempts", m))?;
        let timeout = o
            .timeout_ms
            .given()
            .map(convert::millis)
            .transpose()
            .map_err(|m| convert::invalid(&env, "new RequestRule: timeoutMs", m))?;
        let budget = match o.budget {
            None => None,
            Some(b) => match unsafe { js::type_of(env.raw(), b.raw()) } {
                sys::ValueType::napi_undefined | sys::ValueType::napi_null => None,
                sys::ValueType::napi_boolean => {
                    let on = unsafe { bool::from_napi_value(env.raw(), b.raw()) }?;
                    Some(if on {
                        RuleBudget::Default
                    } else {
                        RuleBudget::Off
                    })
                }
                _ => {
                    let budget: ClassInstance<RetryBudget> =
                        unsafe { ClassInstance::from_napi_value(env.raw(), b.raw()) }.map_err(
                            |_| {
                                js::type_error(
                                    &env,
                                    "new RequestRule: budget must be a RetryBudget, false or null",
                                )
                            },
                        )?;
                    Some(RuleBudget::Shared(budget.core().clone()))
                }
            },
        };
        let options = CoreOptions {
            failure_statuses,
            max_attempts,
            timeout,
            budget,
            retry_any_method: o.retry_any_method.given(),
        };
        guard::call(&env, || CoreRule::new(&options)).map(|inner| RequestRule { inner })
    }

    /// The options given, as the core's spec string (`''` for the defaults).
    #[napi(getter)]
    pub fn spec(&self) -> String {
        self.inner.to_string()
    }

    /// Attempts in all, the first included.
    #[napi(getter)]
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts()
    }

    /// The failure statuses as codes and ranges (`'500-599'`).
    #[napi(getter)]
    pub fn failure_statuses(&self) -> String {
        self.inner.failure_statuses().to_string()
    }

    /// Whether every method is retried as if idempotent.
    #[napi(getter)]
    pub fn retry_any_method(&self) -> bool {
        self.inner.retry_any_method()
    }
}

/// A chosen peer: its id, and the host and port to connect to.
#[napi(object, object_from_js = false)]
pub struct ChosenPeer {
    /// The peer's id (`'10.0.0.1:8080'`).
    pub peer: String,
    /// Its host (`'10.0.0.1'`, `'::1'`: without brackets).
    pub host: String,
    /// Its port.
    pub port: u32,
}

/// One request's state between steps.
#[derive(Default)]
struct CallState {
    /// `None` while an asynchronous choose owns it.
    call: Option<RequestCall>,
    /// The current attempt's choice, until it is reported.
    current: Option<Choice>,
    /// Why the last reported failure was not retried.
    stopped: Option<StopReason>,
}

/// The peer of a choice, kept as the call's current attempt.
fn keep(state: &Mutex<CallState>, call: RequestCall, choice: Choice) -> peerlb::Result<ChosenPeer> {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.call = Some(call);
    let peer = choice.peer().as_str().to_owned();
    let (host, port) = peer_address(&peer).map(|(h, p)| (h.to_owned(), p))?;
    st.current = Some(choice);
    Ok(ChosenPeer {
        peer,
        host,
        port: port.into(),
    })
}

/// What `choose` gives JS: the peer at once, or a Promise of the peer or of an `Error`.
pub enum Chosen {
    Peer(ChosenPeer),
    Promise(sys::napi_value),
}

impl ToNapiValue for Chosen {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val {
            Chosen::Peer(p) => ChosenPeer::to_napi_value(env, p),
            Chosen::Promise(p) => Ok(p),
        }
    }
}

/// An asynchronous choose's result, turned into the peer (or an `Error`) on the JS thread.
struct Resolved {
    state: Arc<Mutex<CallState>>,
    call: RequestCall,
    result: peerlb::Result<Choice>,
}

impl ToNapiValue for Resolved {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let Resolved {
            state,
            call,
            result,
        } = val;
        let kept = match result {
            Ok(choice) => keep(&state, call, choice),
            Err(e) => {
                state.lock().unwrap_or_else(|e| e.into_inner()).call = Some(call);
                Err(e)
            }
        };
        match kept {
            Ok(peer) => ChosenPeer::to_napi_value(env, peer),
            Err(e) => Ok(js::error_value(env, &e)),
        }
    }
}

/// One HTTP request under a rule (internal; used by `peerlb/undici` and `peerlb/http`).
#[napi]
pub struct NativeRequestCall {
    list: peerlb::PeerList,
    state: Arc<Mutex<CallState>>,
}

impl NativeRequestCall {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[napi]
impl NativeRequestCall {
    /// A request with `method` under `rule` on `list`; `bodyReplayable`: whether its body
    /// can be sent again; `idempotent`: `null` (the method decides), `true` or `false`;
    /// `connectRetriesOnly`: the integration cannot send it twice (only a failed connect
    /// moves it to another peer).
    #[napi(constructor)]
    pub fn new(
        rule: &RequestRule,
        list: &NativeList,
        method: String,
        body_replayable: bool,
        idempotent: Option<bool>,
        connect_retries_only: Option<bool>,
    ) -> Self {
        let mut info = RequestInfo::new(&method, body_replayable, idempotent);
        if connect_retries_only == Some(true) {
            info = info.connect_retries_only();
        }
        NativeRequestCall {
            list: list.core().clone(),
            state: Arc::new(Mutex::new(CallState {
                call: Some(RequestCall::new(&rule.inner, info)),
                ..Default::default()
            })),
        }
    }

    /// The next attempt's peer at once, or a Promise of it (or of an `Error`) when the
    /// list has no available peer yet. Throws (or resolves to) the list's error when no
    /// peer can be chosen, or the rule's when no attempt may start. An attempt left
    /// unreported ends as cancelled.
    #[napi(ts_return_type = "ChosenPeer | Promise<ChosenPeer | Error>")]
    pub fn choose(&self, env: Env) -> napi::Result<Chosen> {
        let (call, abandoned) = {
            let mut st = self.lock();
            (st.call.take(), st.current.take())
        };
        drop(abandoned);
        let Some(call) = call else {
            return Err(js::throw(
                &env,
                &peerlb::Error::InvalidArgument("call.choose: a choose is already waiting".into()),
            ));
        };
        // The call is moved into the core; a panic loses it (the request is over).
        let first = guard::call(&env, || Ok(call.choose_now(&self.list, &Request::new())))?;
        match first {
            NowOrLater::Now((call, Ok(choice))) => keep(&self.state, call, choice)
                .map(Chosen::Peer)
                .map_err(|e| js::throw(&env, &e)),
            NowOrLater::Now((call, Err(e))) => {
                self.lock().call = Some(call);
                Err(js::throw(&env, &e))
            }
            NowOrLater::Later(later) => {
                let (deferred, promise) = env.create_deferred()?;
                let state = self.state.clone();
                peerlb::runtime::handle().spawn(async move {
                    let (call, result) = later.await;
                    deferred.resolve(move |_env| {
                        Ok(Resolved {
                            state,
                            call,
                            result,
                        })
                    });
                });
                Ok(Chosen::Promise(promise.raw()))
            }
        }
    }

    /// Reports the current attempt: `status` (the response's), or `error` (what the
    /// integration made of the failure: `'connect-failed'`, `'reset'`, `'timed-out'`,
    /// `'failed'`), and `outcome`, a classifier's override. Returns whether to choose
    /// again.
    #[napi(ts_args_type = "status: number | null, error: string | null, outcome?: string | null")]
    pub fn report(
        &self,
        env: Env,
        status: Option<f64>,
        error: Option<String>,
        outcome: Option<String>,
    ) -> napi::Result<bool> {
        let result = match (status, error) {
            (Some(s), None) => {
                let code = convert::whole(s, u16::MAX as u64)
                    .map_err(|m| convert::invalid(&env, "call.report: status", m))?;
                AttemptResult::status(code as u16).map_err(|e| js::throw(&env, &e))?
            }
            (None, Some(kind)) => AttemptResult::error(&kind).map_err(|e| js::throw(&env, &e))?,
            _ => {
                return Err(js::type_error(
                    &env,
                    "call.report: give exactly one of status and error",
                ))
            }
        };
        let classified = outcome
            .map(|o| o.parse::<peerlb::Outcome>())
            .transpose()
            .map_err(|e| js::throw(&env, &e))?;
        let (mut call, choice) = {
            let mut st = self.lock();
            match (st.call.take(), st.current.take()) {
                (Some(call), Some(choice)) => (call, choice),
                (call, current) => {
                    st.call = call;
                    st.current = current;
                    return Err(js::throw(
                        &env,
                        &peerlb::Error::InvalidArgument(
                            "call.report: no attempt in progress (choose first)".into(),
                        ),
                    ));
                }
            }
        };
        // With no lock of ours held: finishing may deliver events.
        let report = guard::call(&env, || Ok(call.report(choice, result, classified)));
        let mut st = self.lock();
        st.call = Some(call);
        let report = report?;
        st.stopped = report.stopped;
        Ok(report.retry)
    }

    /// Milliseconds left of the rule's overall timeout (`null`: it has none).
    #[napi(getter)]
    pub fn remaining_ms(&self) -> Option<f64> {
        self.lock()
            .call
            .as_ref()
            .and_then(|c| c.remaining())
            .map(|d| d.as_secs_f64() * 1000.0)
    }

    /// Attempts started so far.
    #[napi(getter)]
    pub fn attempts(&self) -> u32 {
        self.lock().call.as_ref().map_or(0, |c| c.attempts())
    }

    /// Why the last failed attempt was not retried (`'not-retryable'`,
    /// `'attempts-exhausted'`, `'budget-exhausted'`, `'timed-out'`), else `null`.
    #[napi(getter)]
    pub fn stopped(&self) -> Option<&'static str> {
        self.lock().stopped.map(StopReason::as_str)
    }
}
