//! The request rule in Python: `peerlb.RequestRule` (the core's `RequestRule`, configured
//! once) and `_RequestCall`, one HTTP request under it, which the integrations
//! (`peerlb.httpx`, `peerlb.requests`) drive: choose a peer, send, report what happened.
//! Which outcome, whether to retry, the latency, the budget: every decision is the core's.

use std::sync::{Arc, Mutex};

use peerlb::request_rule::{
    peer_address, AttemptResult, RequestCall, RequestInfo, RequestRule, RequestRuleOptions,
    RuleBudget, StatusSet, StopReason,
};
use peerlb::{Choice, NowOrLater, Request};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString, PyTuple};

use crate::convert;
use crate::errors::{guard, to_pyerr};
use crate::list::PyPeerList;
use crate::retry::PyRetryBudget;
use crate::wait;

/// The rule every HTTP integration applies (`peerlb.RequestRule`); see the core's
/// `peerlb::request_rule`.
#[pyclass(module = "peerlb._peerlb", name = "RequestRule", frozen)]
pub struct PyRequestRule {
    inner: RequestRule,
}

/// `failure_statuses`: a str of codes and ranges (`"500-599"`, `"502-504,429"`) or an
/// iterable of ints (`range(500, 600)`, `{502, 503}`).
fn failure_statuses(obj: &Bound<'_, PyAny>) -> PyResult<StatusSet> {
    let py = obj.py();
    if let Ok(s) = obj.cast::<PyString>() {
        return s.to_cow()?.parse().map_err(|e| to_pyerr(py, &e));
    }
    if obj.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(PyTypeError::new_err(
            "failure_statuses must be a str or an iterable of ints, not bytes",
        ));
    }
    let codes = convert::each("failure_statuses", obj, |item| {
        convert::uint("a failure status", item, 0, u16::MAX.into()).map(|c| c as u16)
    })
    .map_err(|e| {
        if e.is_instance_of::<PyTypeError>(py) && obj.try_iter().is_err() {
            PyTypeError::new_err(format!(
                "failure_statuses must be a str or an iterable of ints, not {}",
                convert::type_name(obj)
            ))
        } else {
            e
        }
    })?;
    StatusSet::from_codes(codes).map_err(|e| to_pyerr(py, &e))
}

/// `budget`: a `RetryBudget` to share, `False` for none; `None`/`True` is the default (a
/// budget of the rule's own).
fn budget(obj: &Bound<'_, PyAny>) -> PyResult<RuleBudget> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(if b.is_true() {
            RuleBudget::Default
        } else {
            RuleBudget::Off
        });
    }
    match obj.cast::<PyRetryBudget>() {
        Ok(b) => Ok(RuleBudget::Shared(b.get().inner.clone())),
        Err(_) => Err(PyTypeError::new_err(format!(
            "budget must be a peerlb.RetryBudget, False (no budget) or None (the default), not {}",
            convert::type_name(obj)
        ))),
    }
}

#[pymethods]
impl PyRequestRule {
    /// Every argument left out (or `None`) takes the core's default: every 5xx is a
    /// failure, 3 attempts, no overall timeout, a budget of the rule's own, only
    /// idempotent methods retried once sent.
    #[new]
    #[pyo3(signature = (*, failure_statuses=None, max_attempts=None, timeout=None, budget=None, retry_any_method=None))]
    fn new(
        py: Python<'_>,
        failure_statuses: Option<&Bound<'_, PyAny>>,
        max_attempts: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        budget: Option<&Bound<'_, PyAny>>,
        retry_any_method: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        guard(py, || {
            use convert::given;
            let options = RequestRuleOptions {
                failure_statuses: given(failure_statuses)
                    .map(self::failure_statuses)
                    .transpose()?,
                max_attempts: given(max_attempts)
                    .map(|m| convert::u32_arg("max_attempts", m, 0))
                    .transpose()?,
                timeout: convert::seconds("timeout", timeout)?,
                budget: given(budget).map(self::budget).transpose()?,
                retry_any_method: given(retry_any_method)
                    .map(|b| convert::boolean("retry_any_method", b))
                    .transpose()?,
            };
            let inner = RequestRule::new(&options).map_err(|e| to_pyerr(py, &e))?;
            Ok(PyRequestRule { inner })
        })
    }

    /// The options given, as the core's spec string (`""` for the defaults).
    #[getter]
    fn spec(&self) -> String {
        self.inner.to_string()
    }

    /// Attempts in all, the first included.
    #[getter]
    fn max_attempts(&self) -> u32 {
        self.inner.max_attempts()
    }

    /// The failure statuses as codes and ranges (`"500-599"`).
    #[getter]
    fn failure_statuses(&self) -> String {
        self.inner.failure_statuses().to_string()
    }

    /// Whether every method is retried as if idempotent.
    #[getter]
    fn retry_any_method(&self) -> bool {
        self.inner.retry_any_method()
    }

    fn __repr__(&self) -> String {
        match self.inner.to_string().as_str() {
            "" => "<peerlb.RequestRule (defaults)>".to_owned(),
            spec => format!("<peerlb.RequestRule {spec}>"),
        }
    }
}

/// One request's state between steps.
#[derive(Default)]
struct CallState {
    /// `None` while a choose owns it.
    call: Option<RequestCall>,
    /// The current attempt's choice, until it is reported.
    current: Option<Choice>,
    /// Why the last reported failure was not retried.
    stopped: Option<StopReason>,
}

/// One HTTP request under a rule (`peerlb._peerlb._RequestCall`), stepped by
/// `peerlb.httpx` and `peerlb.requests`. Not for direct use.
#[pyclass(module = "peerlb._peerlb", name = "_RequestCall", frozen)]
pub struct PyRequestCall {
    list: peerlb::PeerList,
    state: Arc<Mutex<CallState>>,
}

impl PyRequestCall {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the core call out for a choose; the current choice left unreported (an
    /// attempt abandoned) ends as cancelled.
    fn take_call(&self) -> PyResult<RequestCall> {
        let (call, abandoned) = {
            let mut st = self.lock();
            (st.call.take(), st.current.take())
        };
        drop(abandoned);
        call.ok_or_else(|| PyRuntimeError::new_err("this request is busy choosing a peer"))
    }
}

/// `(peer, host, port)` for the choice, kept as the call's current attempt.
fn chosen<'py>(
    py: Python<'py>,
    state: &Mutex<CallState>,
    call: RequestCall,
    result: peerlb::Result<Choice>,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.call = Some(call);
    let choice = result.map_err(|e| to_pyerr(py, &e))?;
    let peer = choice.peer().as_str();
    let (host, port) = peer_address(peer).map_err(|e| to_pyerr(py, &e))?;
    let tuple = (peer, host, port).into_pyobject(py)?;
    st.current = Some(choice);
    Ok(tuple)
}

#[pymethods]
impl PyRequestCall {
    /// A request with `method` under `rule` on `lst`; `body_replayable`: whether its body
    /// can be sent again; `idempotent`: `None` (the method decides), `True` or `False`.
    #[new]
    #[pyo3(signature = (rule, lst, method, body_replayable, idempotent=None))]
    fn new(
        py: Python<'_>,
        rule: &Bound<'_, PyRequestRule>,
        lst: &Bound<'_, PyPeerList>,
        method: &str,
        body_replayable: bool,
        idempotent: Option<bool>,
    ) -> PyResult<Self> {
        guard(py, || {
            let info = RequestInfo::new(method, body_replayable, idempotent);
            Ok(PyRequestCall {
                list: lst.get().inner.clone(),
                state: Arc::new(Mutex::new(CallState {
                    call: Some(RequestCall::new(&rule.get().inner, info)),
                    ..Default::default()
                })),
            })
        })
    }

    /// The next attempt's `(peer, host, port)`, waiting for a peer with the GIL released;
    /// raises the list's error when none can be chosen (`NoDeadline`, `ChooseTimeout`,
    /// `NotStarted`, ...), or the rule's when no attempt may start.
    fn choose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        guard(py, || {
            let call = self.take_call()?;
            let (call, result) = match call.choose_now(&self.list, &Request::new()) {
                NowOrLater::Now(answer) => answer,
                // A Ctrl-C drops the wait and the call with it: the request is over.
                NowOrLater::Later(later) => wait::block(py, later)?,
            };
            chosen(py, &self.state, call, result)
        })
    }

    /// `choose` for asyncio: a future of the running loop; no thread waits.
    fn choose_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, || {
            let event_loop = py
                .import(intern!(py, "asyncio"))?
                .call_method0(intern!(py, "get_running_loop"))?;
            let future = event_loop.call_method0(intern!(py, "create_future"))?;
            let call = self.take_call()?;
            match call.choose_now(&self.list, &Request::new()) {
                NowOrLater::Now((call, result)) => {
                    match chosen(py, &self.state, call, result) {
                        Ok(t) => future.call_method1(intern!(py, "set_result"), (t,))?,
                        Err(e) => future
                            .call_method1(intern!(py, "set_exception"), (e.into_value(py),))?,
                    };
                }
                NowOrLater::Later(later) => {
                    let state = self.state.clone();
                    let deliver: wait::Deliver<(RequestCall, peerlb::Result<Choice>)> =
                        Box::new(move |py, (call, result)| {
                            match chosen(py, &state, call, result) {
                                Ok(t) => (t.into_any().unbind(), false),
                                Err(e) => (e.into_value(py).into_any(), true),
                            }
                        });
                    wait::spawn(py, later, &event_loop, &future, deliver)?;
                }
            }
            Ok(future)
        })
    }

    /// Reports the current attempt: `status` (the response's), or `error` (what the
    /// integration made of its library's exception: `"connect-failed"`, `"reset"`,
    /// `"timed-out"`, `"failed"`), and `outcome`, a classifier's override (`"ok"`,
    /// `"failure"`, `"declined"`, `"cancelled"`). Returns whether to choose again.
    #[pyo3(signature = (status=None, error=None, outcome=None))]
    fn report(
        &self,
        py: Python<'_>,
        status: Option<&Bound<'_, PyAny>>,
        error: Option<&str>,
        outcome: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        guard(py, || {
            let result = match (convert::given(status), error) {
                (Some(s), None) => {
                    let code = convert::uint("status", s, 0, u16::MAX.into())? as u16;
                    AttemptResult::status(code).map_err(|e| to_pyerr(py, &e))?
                }
                (None, Some(kind)) => AttemptResult::error(kind).map_err(|e| to_pyerr(py, &e))?,
                _ => {
                    return Err(PyTypeError::new_err(
                        "report() takes exactly one of status= and error=",
                    ))
                }
            };
            let classified = match convert::given(outcome) {
                Some(o) => Some(convert::outcome(Some(o))?),
                None => None,
            };
            let (call, choice) = {
                let mut st = self.lock();
                match (st.call.take(), st.current.take()) {
                    (Some(call), Some(choice)) => (call, choice),
                    (call, current) => {
                        st.call = call;
                        st.current = current;
                        return Err(PyRuntimeError::new_err(
                            "report(): no attempt in progress (choose first)",
                        ));
                    }
                }
            };
            // With no lock of ours held: finishing may deliver events to subscribers.
            let mut call = call;
            let report = call.report(choice, result, classified);
            let mut st = self.lock();
            st.call = Some(call);
            st.stopped = report.stopped;
            Ok(report.retry)
        })
    }

    /// Seconds left of the rule's overall timeout (`None`: it has none).
    #[getter]
    fn remaining(&self) -> Option<f64> {
        self.lock()
            .call
            .as_ref()
            .and_then(|c| c.remaining())
            .map(|d| d.as_secs_f64())
    }

    /// Attempts started so far.
    #[getter]
    fn attempts(&self) -> u32 {
        self.lock().call.as_ref().map_or(0, |c| c.attempts())
    }

    /// Why the last failed attempt was not retried (`"not-retryable"`,
    /// `"attempts-exhausted"`, `"budget-exhausted"`, `"timed-out"`), else `None`.
    #[getter]
    fn stopped(&self) -> Option<&'static str> {
        self.lock().stopped.map(StopReason::as_str)
    }
}
