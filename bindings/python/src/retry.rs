//! Retry and the test clock in Python: `ManualClock`, `RetryBudget`, and `_RetryCall`, the
//! step-by-step core `Retry` that `PeerList.retry` / `retry_async` drive
//! (`python/peerlb/_retry.py` maps the function's result or exception to a step; every
//! decision — another attempt or not, which peer, the budget, the final error — is core's).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use peerlb::{Clock, Request, Retry, RetryBudget, RetryPolicy};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};
use pyo3::PyTraverseError;

use crate::convert;
use crate::errors::{invalid_argument, to_pyerr};
use crate::PyChoice;

/// A clock that stands still until `advance` moves it (`peerlb.ManualClock`), for tests:
/// pass it as `PeerList(clock=...)` / `RetryBudget(clock=...)`, then `advance(seconds)`.
#[pyclass(module = "peerlb._peerlb", name = "ManualClock", frozen)]
pub struct PyManualClock {
    pub inner: peerlb::ManualClock,
}

#[pymethods]
impl PyManualClock {
    #[new]
    fn new() -> Self {
        PyManualClock {
            inner: peerlb::ManualClock::new(),
        }
    }

    /// Moves the clock forward by `seconds` (a number or a `datetime.timedelta`; `0.5` is
    /// half a second), then runs what came due on this thread before returning: ejections
    /// that end now restore their peers (and their `restored` events are delivered).
    fn advance(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let by = convert::seconds("seconds", Some(seconds))?.ok_or_else(|| {
            PyTypeError::new_err(
                "advance() needs a number of seconds or a datetime.timedelta, not None",
            )
        })?;
        self.inner.advance(by);
        Ok(())
    }

    /// How far it has been advanced in total, in seconds.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.inner.elapsed().as_secs_f64()
    }

    fn __repr__(&self) -> String {
        format!("<peerlb.ManualClock +{:?}>", self.inner.elapsed())
    }
}

/// The clock argument of `PeerList` and `RetryBudget`: `None` (real) or a `ManualClock`.
pub fn clock_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Clock> {
    match obj {
        None => Ok(Clock::real()),
        Some(o) if o.is_none() => Ok(Clock::real()),
        Some(o) => match o.cast::<PyManualClock>() {
            Ok(m) => Ok(Clock::from(m.get().inner.clone())),
            Err(_) => Err(PyTypeError::new_err(format!(
                "clock must be a peerlb.ManualClock or None, not {}",
                convert::type_name(o)
            ))),
        },
    }
}

/// A retry budget shared by many retried calls (`peerlb.RetryBudget`): over a sliding
/// window of `ttl` seconds, retries may be at most `min_per_sec × ttl + ratio × calls`.
#[pyclass(module = "peerlb._peerlb", name = "RetryBudget", frozen)]
pub struct PyRetryBudget {
    pub inner: Arc<RetryBudget>,
}

fn float_arg(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    if obj.is_instance_of::<PyBool>()
        || !(obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>())
    {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number, not {}",
            convert::type_name(obj)
        )));
    }
    obj.extract()
}

/// An int in 0..=u32::MAX (`TypeError` for other types, `InvalidArgument` out of range).
fn u32_arg(what: &str, obj: &Bound<'_, PyAny>, min: u32) -> PyResult<u32> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            convert::type_name(obj)
        )));
    }
    match obj.extract::<u32>() {
        Ok(v) if v >= min => Ok(v),
        _ => Err(invalid_argument(
            obj.py(),
            format!("{what} must be between {min} and 2**32-1, got {obj}"),
        )),
    }
}

#[pymethods]
impl PyRetryBudget {
    /// `ratio` retries per call (0..1) plus `min_per_sec` retries per second, over a
    /// sliding window of `ttl` seconds (1..60); `clock` a `ManualClock` for tests.
    #[new]
    #[pyo3(signature = (ratio=None, min_per_sec=None, ttl=None, clock=None))]
    #[pyo3(text_signature = "(ratio=0.2, min_per_sec=10, ttl=10.0, clock=None)")]
    fn new(
        py: Python<'_>,
        ratio: Option<&Bound<'_, PyAny>>,
        min_per_sec: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let ratio = ratio
            .map(|r| float_arg("ratio", r))
            .transpose()?
            .unwrap_or(0.2);
        let min_per_sec = min_per_sec
            .map(|m| u32_arg("min_per_sec", m, 0))
            .transpose()?
            .unwrap_or(10);
        let ttl = convert::seconds("ttl", ttl)?.unwrap_or(Duration::from_secs(10));
        let clock = clock_arg(clock)?;
        let inner =
            RetryBudget::new(ratio, min_per_sec, ttl, clock).map_err(|e| to_pyerr(py, &e))?;
        Ok(PyRetryBudget { inner })
    }

    /// How many retries the budget would allow right now.
    #[getter]
    fn balance(&self) -> u64 {
        self.inner.balance()
    }

    fn __repr__(&self) -> String {
        format!("<peerlb.RetryBudget balance={}>", self.inner.balance())
    }
}

/// The policy of `PeerList.retry(fn, *, max_attempts, timeout, budget)`.
pub fn policy(
    max_attempts: Option<&Bound<'_, PyAny>>,
    timeout: Option<Duration>,
    budget: Option<&Bound<'_, PyAny>>,
) -> PyResult<RetryPolicy> {
    let max = match max_attempts {
        Some(m) => u32_arg("max_attempts", m, 1)?,
        None => 3,
    };
    let mut policy = RetryPolicy::new(max);
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
    /// Whether a choose may wait (the call has a timeout); without one it never does.
    may_wait: bool,
    /// `None` while an async choose has it (one step at a time).
    retry: Arc<Mutex<Option<Retry>>>,
    /// The last failed attempt's exception: the `__cause__` of the final error.
    last: Arc<Mutex<Option<Py<PyAny>>>>,
}

impl PyRetryCall {
    /// A call under `policy` on `list`; `may_wait` when the policy has a timeout.
    pub fn new(
        list: peerlb::PeerList,
        policy: &RetryPolicy,
        may_wait: bool,
        key: Option<Vec<u8>>,
    ) -> Self {
        PyRetryCall {
            list,
            key,
            may_wait,
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
    c.get()
        .take()
        .ok_or_else(|| PyRuntimeError::new_err("this choice was already finished"))
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
        let mut retry = self.take()?;
        let mut request = Request::new();
        if let Some(k) = &self.key {
            request = request.with_shard_key(k);
        }
        let result = if self.may_wait {
            crate::wait::block_on(py, retry.choose_async(&self.list, &request))
        } else {
            // No deadline: core answers at once (a peer, or `no-deadline`), so there is
            // nothing to wait for and no need to release the GIL or start the runtime.
            Ok(retry.choose(&self.list, &request))
        };
        self.put(retry);
        match result? {
            Ok(choice) => Ok(PyChoice::from_core(choice)),
            Err(e) => Err(final_error(py, &e, &self.last)),
        }
    }

    /// `choose` for asyncio: a future of the running loop; no thread waits.
    ///
    /// The first poll runs here, on the caller's thread (like `PeerList.choose_async`'s
    /// fast path, so strategies see the same thread as with `choose`); only a choose that
    /// has to wait continues on the library runtime.
    fn choose_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let event_loop = py
            .import(intern!(py, "asyncio"))?
            .call_method0(intern!(py, "get_running_loop"))?;
        let future = event_loop.call_method0(intern!(py, "create_future"))?;
        let mut retry = self.take()?;
        let list = self.list.clone();
        let key = self.key.clone();
        let mut choosing = Box::pin(async move {
            let result = {
                let mut request = Request::new();
                if let Some(k) = &key {
                    request = request.with_shard_key(k);
                }
                retry.choose_async(&list, &request).await
            };
            (retry, list, result)
        });
        let first = {
            let _runtime = peerlb::runtime::handle().enter();
            let mut cx = Context::from_waker(Waker::noop());
            choosing.as_mut().poll(&mut cx)
        };
        if let Poll::Ready((retry, list, result)) = first {
            self.put(retry);
            drop(list);
            match result {
                Ok(choice) => {
                    future
                        .call_method1(intern!(py, "set_result"), (PyChoice::from_core(choice),))?;
                }
                Err(e) => {
                    let err = final_error(py, &e, &self.last);
                    future.call_method1(intern!(py, "set_exception"), (err.into_value(py),))?;
                }
            }
            return Ok(future);
        }
        let slot = self.retry.clone();
        let last = self.last.clone();
        let target = future.clone().unbind();
        let loop_ = event_loop.clone().unbind();
        let complete = wrap_pyfunction!(crate::wait::_complete, py)?
            .into_any()
            .unbind();
        let task = peerlb::runtime::handle().spawn(async move {
            let (retry, list, result) = choosing.await;
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(retry);
            // Taking the GIL may wait; do it off the runtime's worker threads.
            drop(tokio::task::spawn_blocking(move || {
                Python::attach(|py| {
                    let (value, is_error): (Py<PyAny>, bool) = match result {
                        Ok(choice) => match Py::new(py, PyChoice::from_core(choice)) {
                            Ok(c) => (c.into_any(), false),
                            Err(e) => (e.into_value(py).into_any(), true),
                        },
                        Err(e) => (final_error(py, &e, &last).into_value(py).into_any(), true),
                    };
                    crate::wait::schedule(py, &loop_, &target, &complete, value, is_error);
                });
                // The list clone may be the last reference: drop it with the GIL free.
                drop(list);
            }));
        });
        crate::wait::cancel_on_done(py, &future, task.abort_handle())?;
        Ok(future)
    }

    /// The attempt on `choice` succeeded.
    fn succeeded(&self, choice: &Bound<'_, PyAny>) -> PyResult<()> {
        let c = core_choice(choice)?;
        self.with(|r| r.succeeded(c, None))
    }

    /// The attempt on `choice` failed with exception `exc` (its `str()` is the attempt's
    /// error); the next `choose` tries another peer or raises the final error.
    fn failed(&self, choice: &Bound<'_, PyAny>, exc: &Bound<'_, PyAny>) -> PyResult<()> {
        let message = attempt_message(exc);
        let c = core_choice(choice)?;
        self.with(|r| r.failed(c, message, None))?;
        let previous = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(exc.clone().unbind());
        // Dropped with no lock held: freeing it may run arbitrary Python code.
        drop(previous);
        Ok(())
    }

    /// The peer declined (the function raised `peerlb.Declined`): returns the call's final
    /// `Declined` error (to raise from `exc`).
    fn declined<'py>(
        &self,
        choice: &Bound<'py, PyAny>,
        exc: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = choice.py();
        let message = attempt_message(exc);
        let c = core_choice(choice)?;
        let error = self.with(|r| r.declined(c, message, None))?;
        Ok(to_pyerr(py, &error)
            .into_value(py)
            .into_bound(py)
            .into_any())
    }

    /// Attempts started so far.
    #[getter]
    fn attempts(&self) -> PyResult<u32> {
        self.with(|r| r.attempts())
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
