//! Retry and the test clock in Python: `ManualClock`, `RetryBudget`, and `_RetryCall`, the
//! step-by-step core `Retry` that `PeerList.retry` / `retry_async` drive
//! (`python/peerlb/_retry.py` maps the function's result or exception to a step; every
//! decision — another attempt or not, which peer, the budget, the final error — is core's).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlb::{Clock, NowOrLater, Request, Retry, RetryBudget, RetryBudgetOptions, RetryPolicy};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

use crate::convert;
use crate::errors::{already_finished, check, guard, to_pyerr};
use crate::{wait, PyChoice};

/// A clock that stands still until `advance` moves it (`peerlb.ManualClock`), for tests:
/// pass it as `PeerList(clock=...)` / `RetryBudget(clock=...)`, then `advance(seconds)`.
#[pyclass(module = "peerlb._peerlb", name = "ManualClock", frozen)]
pub struct PyManualClock {
    pub inner: peerlb::ManualClock,
}

#[pymethods]
impl PyManualClock {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        guard(py, || {
            Ok(PyManualClock {
                inner: peerlb::ManualClock::new(),
            })
        })
    }

    /// Moves the clock forward by `seconds` (a number or a `datetime.timedelta`; `0.5` is
    /// half a second), then runs what came due on this thread before returning: ejections
    /// that end now restore their peers (and their `restored` events are delivered).
    fn advance(&self, py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(py, || {
            let by = convert::seconds("seconds", Some(seconds))?.ok_or_else(|| {
                PyTypeError::new_err(
                    "advance() needs a number of seconds or a datetime.timedelta, not None",
                )
            })?;
            // Restorations (and their events) run here: without the GIL, like an update.
            py.detach(|| self.inner.advance(by));
            Ok(())
        })
    }

    /// How far it has been advanced in total, in seconds.
    #[getter]
    fn elapsed(&self, py: Python<'_>) -> PyResult<f64> {
        guard(py, || Ok(self.inner.elapsed().as_secs_f64()))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || {
            Ok(format!("<peerlb.ManualClock +{:?}>", self.inner.elapsed()))
        })
    }
}

/// The clock argument of `PeerList` and `RetryBudget` when given (not `None`): a
/// `ManualClock`.
pub fn clock_arg(obj: &Bound<'_, PyAny>) -> PyResult<Clock> {
    match obj.cast::<PyManualClock>() {
        Ok(m) => Ok(Clock::from(m.get().inner.clone())),
        Err(_) => Err(PyTypeError::new_err(format!(
            "clock must be a peerlb.ManualClock or None, not {}",
            convert::type_name(obj)
        ))),
    }
}

/// A retry budget shared by many retried calls (`peerlb.RetryBudget`): over a sliding
/// window of `ttl` seconds, retries may be at most `min_per_sec × ttl + ratio × calls`.
#[pyclass(module = "peerlb._peerlb", name = "RetryBudget", frozen)]
pub struct PyRetryBudget {
    pub inner: Arc<RetryBudget>,
}

#[pymethods]
impl PyRetryBudget {
    /// `ratio` retries per call (0..1) plus `min_per_sec` retries per second, over a
    /// sliding window of `ttl` seconds (1..60); `clock` a `ManualClock` for tests.
    #[new]
    #[pyo3(signature = (ratio=None, min_per_sec=None, ttl=None, clock=None))]
    fn new(
        py: Python<'_>,
        ratio: Option<&Bound<'_, PyAny>>,
        min_per_sec: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        guard(py, || {
            use convert::given;
            let options = RetryBudgetOptions {
                ratio: given(ratio)
                    .map(|r| {
                        if r.is_instance_of::<pyo3::types::PyFloat>()
                            || r.is_instance_of::<pyo3::types::PyInt>()
                        {
                            convert::number("ratio", r)
                        } else {
                            Err(PyTypeError::new_err(format!(
                                "ratio must be a number, not {}",
                                convert::type_name(r)
                            )))
                        }
                    })
                    .transpose()?,
                min_per_sec: given(min_per_sec)
                    .map(|m| convert::u32_arg("min_per_sec", m, 0))
                    .transpose()?,
                ttl: convert::seconds("ttl", ttl)?,
            };
            let clock = match given(clock) {
                Some(c) => clock_arg(c)?,
                None => Clock::real(),
            };
            let inner = RetryBudget::from_options(&options, clock).map_err(|e| to_pyerr(py, &e))?;
            Ok(PyRetryBudget { inner })
        })
    }

    /// How many retries the budget would allow right now.
    #[getter]
    fn balance(&self, py: Python<'_>) -> PyResult<u64> {
        guard(py, || Ok(self.inner.balance()))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<peerlb.RetryBudget balance={}>",
            self.balance(py)?
        ))
    }
}

/// The policy of `PeerList.retry(fn, *, max_attempts, timeout, budget)`.
pub fn policy(
    max_attempts: Option<&Bound<'_, PyAny>>,
    timeout: Option<Duration>,
    budget: Option<&Bound<'_, PyAny>>,
) -> PyResult<RetryPolicy> {
    let mut policy = RetryPolicy::default();
    if let Some(m) = max_attempts.filter(|m| !m.is_none()) {
        let n = convert::u32_arg("max_attempts", m, 0)?;
        policy = check(m.py(), policy.with_max_attempts(n))?;
    }
    if let Some(t) = timeout {
        policy = policy.timeout(t);
    }
    if let Some(b) = budget.filter(|b| !b.is_none()) {
        let b = b.cast::<PyRetryBudget>().map_err(|_| {
            PyTypeError::new_err(format!(
                "budget must be a peerlb.RetryBudget or None, not {}",
                convert::type_name(b)
            ))
        })?;
        policy = policy.budget(b.get().inner.clone());
    }
    Ok(policy)
}

/// One retried call in progress (`peerlb._peerlb._RetryCall`): core's `Retry`, stepped by
/// `peerlb._retry`. Not for direct use.
#[pyclass(module = "peerlb._peerlb", name = "_RetryCall", frozen)]
pub struct PyRetryCall {
    list: peerlb::PeerList,
    key: Option<Vec<u8>>,
    /// `None` while a choose has it (one step at a time).
    retry: Arc<Mutex<Option<Retry>>>,
    /// The last failed attempt's exception: the `__cause__` of the final error.
    last: Arc<Mutex<Option<Py<PyAny>>>>,
}

impl PyRetryCall {
    /// A call under `policy` on `list`.
    pub fn new(list: peerlb::PeerList, policy: &RetryPolicy, key: Option<Vec<u8>>) -> Self {
        PyRetryCall {
            list,
            key,
            retry: Arc::new(Mutex::new(Some(Retry::new(policy)))),
            last: Arc::new(Mutex::new(None)),
        }
    }

    fn take(&self) -> PyResult<Retry> {
        self.retry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this retried call is busy or was abandoned"))
    }

    fn put(&self, retry: Retry) {
        *self.retry.lock().unwrap_or_else(|e| e.into_inner()) = Some(retry);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Retry) -> T) -> PyResult<T> {
        let mut retry = self.take()?;
        let out = f(&mut retry);
        self.put(retry);
        Ok(out)
    }

    /// Core's next step: the next attempt's choice (or the call's final error) now, or a
    /// wait for it. The request carries the shard key; the deadline is the policy's.
    fn choose_now(&self) -> PyResult<NowOrLater<(Retry, peerlb::Result<peerlb::Choice>)>> {
        let retry = self.take()?;
        let mut request = Request::new();
        if let Some(k) = &self.key {
            request = request.with_shard_key(k);
        }
        Ok(retry.choose_now(&self.list, &request))
    }
}

/// The final error of a retried call, chained to the last attempt's exception.
fn final_error(py: Python<'_>, error: &peerlb::Error, last: &Mutex<Option<Py<PyAny>>>) -> PyErr {
    let err = to_pyerr(py, error);
    let cause = last.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(cause) = cause {
        err.set_cause(py, Some(PyErr::from_value(cause.into_bound(py))));
    }
    err
}

/// A `Choice`'s core choice, taken out (the step finishes it).
fn core_choice(choice: &Bound<'_, PyAny>) -> PyResult<peerlb::Choice> {
    let c = choice
        .cast::<PyChoice>()
        .map_err(|_| PyTypeError::new_err("expected a peerlb.Choice"))?;
    let c = c.get();
    c.take()
        .ok_or_else(|| already_finished(choice.py(), c.peer_id()))
}

/// The remote system's code an attempt's exception carries: its `remote_code` attribute,
/// when that is an int in `i64` range (anything else is ignored).
fn remote_code(exc: &Bound<'_, PyAny>) -> Option<i64> {
    let code = exc.getattr(pyo3::intern!(exc.py(), "remote_code")).ok()?;
    if code.is_none() {
        return None;
    }
    convert::i64_arg("remote_code", &code).ok()
}

/// `str(exc)`, or the exception's type name when that is empty.
fn attempt_message(exc: &Bound<'_, PyAny>) -> String {
    let text = exc.str().map(|s| s.to_string()).unwrap_or_default();
    if text.is_empty() {
        convert::type_name(exc)
    } else {
        text
    }
}

#[pymethods]
impl PyRetryCall {
    /// The next attempt's peer (waiting for one with the GIL released), or the call's
    /// final error.
    fn choose(&self, py: Python<'_>) -> PyResult<PyChoice> {
        guard(py, || {
            let (retry, result) = match self.choose_now()? {
                NowOrLater::Now(answer) => answer,
                // A Ctrl-C drops the wait and the `Retry` with it: the call is over.
                NowOrLater::Later(later) => wait::block(py, later)?,
            };
            self.put(retry);
            match result {
                Ok(choice) => Ok(PyChoice::from_core(choice)),
                Err(e) => Err(final_error(py, &e, &self.last)),
            }
        })
    }

    /// `choose` for asyncio: a future of the running loop; no thread waits.
    ///
    /// Core's fast path runs here, on the caller's thread (as `PeerList.choose_async`'s
    /// does); only a choose that has to wait continues on the library runtime.
    fn choose_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, || {
            let event_loop = py
                .import(intern!(py, "asyncio"))?
                .call_method0(intern!(py, "get_running_loop"))?;
            let future = event_loop.call_method0(intern!(py, "create_future"))?;
            match self.choose_now()? {
                NowOrLater::Now((retry, result)) => {
                    self.put(retry);
                    match result {
                        Ok(choice) => {
                            future.call_method1(
                                intern!(py, "set_result"),
                                (PyChoice::from_core(choice),),
                            )?;
                        }
                        Err(e) => {
                            let err = final_error(py, &e, &self.last);
                            future.call_method1(
                                intern!(py, "set_exception"),
                                (err.into_value(py),),
                            )?;
                        }
                    }
                }
                NowOrLater::Later(later) => {
                    let slot = self.retry.clone();
                    let last = self.last.clone();
                    let deliver: wait::Deliver<(Retry, peerlb::Result<peerlb::Choice>)> =
                        Box::new(move |py, (retry, result)| {
                            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(retry);
                            wait::choice_value(py, result.map_err(|e| final_error(py, &e, &last)))
                        });
                    wait::spawn(py, later, &event_loop, &future, deliver)?;
                }
            }
            Ok(future)
        })
    }

    /// The attempt on `choice` succeeded.
    fn succeeded(&self, py: Python<'_>, choice: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(py, || {
            let c = core_choice(choice)?;
            self.with(|r| r.succeeded(c, None))
        })
    }

    /// The attempt on `choice` failed with exception `exc` (its `str()` is the attempt's
    /// error); the next `choose` tries another peer or raises the final error.
    fn failed(
        &self,
        py: Python<'_>,
        choice: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        guard(py, || {
            let message = attempt_message(exc);
            let code = remote_code(exc);
            let c = core_choice(choice)?;
            self.with(|r| r.failed_with_code(c, message, code, None))?;
            let previous = self
                .last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .replace(exc.clone().unbind());
            // Dropped with no lock held: freeing it may run arbitrary Python code.
            drop(previous);
            Ok(())
        })
    }

    /// The peer declined (the function raised `peerlb.Declined`): returns the call's final
    /// `Declined` error (to raise from `exc`).
    fn declined<'py>(
        &self,
        choice: &Bound<'py, PyAny>,
        exc: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = choice.py();
        guard(py, || {
            let message = attempt_message(exc);
            let code = remote_code(exc);
            let c = core_choice(choice)?;
            let error = self.with(|r| r.declined_with_code(c, message, code, None))?;
            Ok(to_pyerr(py, &error)
                .into_value(py)
                .into_bound(py)
                .into_any())
        })
    }

    /// Attempts started so far.
    #[getter]
    fn attempts(&self, py: Python<'_>) -> PyResult<u32> {
        guard(py, || self.with(|r| r.attempts()))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(guard) = self.last.try_lock() {
            if let Some(e) = guard.as_ref() {
                visit.call(e)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(last); // with no lock held
    }
}
