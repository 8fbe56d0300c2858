//! `peerlb.PeerList`: core's `PeerList` for Python.

use std::sync::{Arc, Mutex};

use peerlb::{ErrorCode, ListOptions, Request};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyMapping, PyString, PyType};
use pyo3::PyTraverseError;

use crate::choice::PyChoice;
use crate::errors::{check, to_pyerr};
use crate::transport::PyTransport;
use crate::{convert, events, retry, wait};

/// A list of peers with a strategy to choose among the available ones (`peerlb.PeerList`).
#[pyclass(module = "peerlb._peerlb", name = "PeerList", frozen, weakref)]
pub struct PyPeerList {
    pub(crate) inner: peerlb::PeerList,
    transport: Option<Arc<PyTransport>>,
    /// Event subscriptions; they last as long as the list unless cancelled.
    subscriptions: Mutex<Vec<Arc<events::SubEntry>>>,
}

/// `peerlb.AdminResult`, looked up once.
static ADMIN_RESULT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Core's admin result as a `peerlb.AdminResult` (a str enum).
fn admin_result(
    py: Python<'_>,
    result: peerlb::Result<peerlb::AdminResult>,
) -> PyResult<Py<PyAny>> {
    let result = check(py, result)?;
    let class = ADMIN_RESULT.import(py, "peerlb._types", "AdminResult")?;
    Ok(class.call1((result.as_str(),))?.unbind())
}

/// The `ejection` argument: `True`/`None` (the default policy), `False` (off), or a
/// mapping of option names to ints, parsed by core (`EjectionPolicy::set`).
fn ejection_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<peerlb::EjectionPolicy>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Some(peerlb::EjectionPolicy::default()));
    };
    let py = obj.py();
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(b.is_true().then(peerlb::EjectionPolicy::default));
    }
    let Ok(map) = obj.cast::<PyMapping>() else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "ejection must be a bool or a dict of options (failures, base_ms, max_ms, \
             max_percent, panic_percent), not {}",
            convert::type_name(obj)
        )));
    };
    let mut policy = peerlb::EjectionPolicy::default();
    for item in map.items()?.iter() {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let key = convert::string("an ejection option name", &key)?;
        if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "ejection option {key:?} must be an int, not {}",
                convert::type_name(&value)
            )));
        }
        check(py, policy.set(&key, &value.str()?.to_cow()?))?;
    }
    Ok(Some(policy))
}

/// What the fast, non-blocking attempt of `choose` found.
enum Attempt {
    Done(peerlb::Result<peerlb::Choice>),
    /// No peer now, and the caller gave a timeout: wait on the slow path.
    Wait,
}

impl PyPeerList {
    /// Tries to choose without waiting (core's lock-free path). Only when core says it
    /// would have to wait for a deadline (`no-deadline`) and the caller has one do we go
    /// to the slow path; every other answer is final.
    #[inline]
    fn attempt(&self, key: Option<&[u8]>, has_timeout: bool) -> Attempt {
        let mut request = Request::new();
        if let Some(k) = key {
            request = request.with_shard_key(k);
        }
        match self.inner.choose(&request) {
            Err(e) if has_timeout && e.code() == ErrorCode::NoDeadline => Attempt::Wait,
            other => Attempt::Done(other),
        }
    }
}

#[pymethods]
impl PyPeerList {
    #[new]
    #[pyo3(
        signature = (strategy=None, *, shuffle=None, seed=None, fail_fast=None, transport=None, ejection=None, clock=None),
        text_signature = "(strategy='round-robin', *, shuffle=True, seed=None, fail_fast=False, transport=None, ejection=True, clock=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        strategy: Option<&Bound<'_, PyAny>>,
        shuffle: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        fail_fast: Option<&Bound<'_, PyAny>>,
        transport: Option<&Bound<'_, PyAny>>,
        ejection: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let strategy = match strategy {
            Some(s) => convert::string("strategy", s)?,
            None => "round-robin".to_owned(),
        };
        let mut options = ListOptions::default()
            .shuffle(convert::boolean("shuffle", shuffle, true)?)
            .fail_fast(convert::boolean("fail_fast", fail_fast, false)?);
        if let Some(seed) = seed {
            options = options.seed(convert::u64_arg("seed", seed)?);
        }
        options = options
            .ejection(ejection_arg(ejection)?)
            .clock(retry::clock_arg(clock)?);
        let mut py_transport = None;
        if let Some(t) = transport {
            let builtin = t
                .cast::<PyString>()
                .ok()
                .map(|s| s.to_cow().map(|c| c.into_owned()))
                .transpose()?;
            match builtin.as_deref() {
                Some(spec) => {
                    // A built-in transport by spec: "always-available",
                    // "tcp-probe?interval_ms=200&timeout_ms=100", ...
                    options = options.transport(check(py, peerlb::transport_from_spec(spec))?);
                }
                None => {
                    let wrapped = Arc::new(PyTransport::new(t)?);
                    options = options.transport(wrapped.clone());
                    py_transport = Some(wrapped);
                }
            }
        }
        let options = check(py, options.strategy_name(&strategy))?;
        let inner = check(py, peerlb::PeerList::new(options))?;
        Ok(PyPeerList {
            inner,
            transport: py_transport,
            subscriptions: Mutex::new(Vec::new()),
        })
    }

    /// Adds and removes peers (removals first). Applies everything it can and raises one
    /// error for all failures (`.errors` lists them).
    #[pyo3(signature = (add=None, remove=None), text_signature = "($self, add=(), remove=())")]
    fn update(
        &self,
        py: Python<'_>,
        add: Option<&Bound<'_, PyAny>>,
        remove: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let additions = convert::additions(add)?;
        let removals = convert::removals(remove)?;
        check(py, self.inner.update(additions, removals))
    }

    /// Starts the list: retains every peer through the transport.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        check(py, self.inner.start())
    }

    /// Stops the list: releases every peer; waiting `choose` calls fail with `NotStarted`.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        check(py, self.inner.stop())
    }

    /// Chooses an available peer. With `timeout` (seconds or timedelta) it waits up to
    /// that long for one, without holding the GIL; without, it fails at once.
    #[pyo3(signature = (timeout=None, shard_key=None))]
    fn choose(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
        shard_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyChoice> {
        let timeout = convert::seconds("timeout", timeout)?;
        let key = convert::shard_key(shard_key)?;
        match self.attempt(key.as_deref(), timeout.is_some()) {
            Attempt::Done(Ok(choice)) => Ok(PyChoice::from_core(choice)),
            Attempt::Done(Err(e)) => Err(to_pyerr(py, &e)),
            Attempt::Wait => {
                let timeout = timeout.expect("Wait only with a timeout");
                wait::choose_blocking(py, &self.inner, timeout, key.as_deref())
                    .map(PyChoice::from_core)
            }
        }
    }

    /// `choose` for asyncio: returns a future of the running loop; waiting blocks no
    /// thread. Cancelling the future abandons the request.
    #[pyo3(signature = (timeout=None, shard_key=None))]
    fn choose_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
        shard_key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = convert::seconds("timeout", timeout)?;
        let key = convert::shard_key(shard_key)?;
        let event_loop = py
            .import(intern!(py, "asyncio"))?
            .call_method0(intern!(py, "get_running_loop"))?;
        let future = event_loop.call_method0(intern!(py, "create_future"))?;
        match self.attempt(key.as_deref(), timeout.is_some()) {
            Attempt::Done(Ok(choice)) => {
                future.call_method1(intern!(py, "set_result"), (PyChoice::from_core(choice),))?;
            }
            Attempt::Done(Err(e)) => {
                future.call_method1(
                    intern!(py, "set_exception"),
                    (to_pyerr(py, &e).into_value(py),),
                )?;
            }
            Attempt::Wait => {
                let timeout = timeout.expect("Wait only with a timeout");
                wait::spawn_choose(py, &self.inner, timeout, key, &event_loop, &future)?;
            }
        }
        Ok(future)
    }

    /// A snapshot of the list as a dict.
    fn introspect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snap = self.inner.introspect();
        let d = PyDict::new(py);
        d.set_item("strategy", snap.strategy)?;
        d.set_item("transport", snap.transport)?;
        d.set_item("state", snap.state)?;
        d.set_item("summary", snap.summary)?;
        d.set_item("available", snap.available)?;
        d.set_item("total", snap.total)?;
        d.set_item("panic", snap.panic)?;
        d.set_item("ejected", snap.ejected)?;
        d.set_item("disabled", snap.disabled)?;
        d.set_item("chosen", snap.chosen)?;
        d.set_item("failures", snap.failures)?;
        d.set_item("ejections", snap.ejections)?;
        d.set_item("peers", peer_dicts(py, snap.peers)?)?;
        Ok(d)
    }

    /// Every backend with its admin and ejection state: `introspect()["peers"]`.
    fn list_backends<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        peer_dicts(py, self.inner.list_backends())
    }

    /// Admin: no new requests go to `peer` (in-flight ones finish); it stays disabled
    /// across updates until `enable`. Returns `AdminResult.SUCCESS` or
    /// `AdminResult.NO_ACTION_REQUIRED`; raises `PeerNotInList`/`InvalidArgument` (failed).
    fn disable(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let id = convert::string("peer", peer)?;
        admin_result(py, self.inner.disable(&id))
    }

    /// Admin: undoes `disable`. Same results as `disable`.
    fn enable(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let id = convert::string("peer", peer)?;
        admin_result(py, self.inner.enable(&id))
    }

    /// Admin: clears `peer`'s ejection and failure history (an ejected peer comes back
    /// now). Same results as `disable`.
    fn reset(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let id = convert::string("peer", peer)?;
        admin_result(py, self.inner.reset(&id))
    }

    /// Admin: removes `peer` from the list (as `update(remove=[peer])`) and forgets its
    /// admin state. Same results as `disable`.
    fn delete(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let id = convert::string("peer", peer)?;
        admin_result(py, self.inner.delete(&id))
    }

    /// Calls `callback(event)` (a `PeerEvent`) for every peer event, in order, one at a
    /// time, outside the list's locks (it may call back into the list), usually on the thread
    /// that caused the event (a library thread for timers and probes), or on a thread that
    /// is delivering this list's events at that moment. An exception it raises
    /// goes to `sys.unraisablehook`. Returns a `Subscription` (lasting as long as the list
    /// unless cancelled).
    fn subscribe(
        slf: &Bound<'_, Self>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<events::PySubscription> {
        let this = slf.get();
        let entry = Arc::new(events::SubEntry::subscribe(&this.inner, callback)?);
        let mut subs = this.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| s.active());
        subs.push(entry.clone());
        // The handle keeps the list (which keeps the callback) so the garbage collector
        // sees a cycle running through a kept `Subscription`.
        Ok(events::PySubscription::new(
            entry,
            slf.clone().into_any().unbind(),
        ))
    }

    /// Calls `fn(peer)` with a chosen peer until it returns (its value is returned):
    /// an exception is a failed attempt (retried on another peer), `peerlb.Declined`
    /// stops at once. See `peerlb._retry` and the stubs for the whole contract.
    #[pyo3(signature = (fn_, /, *, max_attempts=None, timeout=None, budget=None, shard_key=None))]
    #[pyo3(
        text_signature = "($self, fn, /, *, max_attempts=3, timeout=None, budget=None, shard_key=None)"
    )]
    fn retry<'py>(
        &self,
        py: Python<'py>,
        fn_: &Bound<'py, PyAny>,
        max_attempts: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
        budget: Option<&Bound<'py, PyAny>>,
        shard_key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let call = self.retry_call(fn_, max_attempts, timeout, budget, shard_key)?;
        py.import(intern!(py, "peerlb._retry"))?
            .call_method1(intern!(py, "drive"), (call, fn_))
    }

    /// Checks `retry`'s options without calling anything (the `retrying` decorator calls
    /// it when it decorates, so bad options fail there and not at the first call).
    #[pyo3(signature = (*, max_attempts=None, timeout=None, budget=None, shard_key=None))]
    #[pyo3(
        text_signature = "($self, *, max_attempts=3, timeout=None, budget=None, shard_key=None)"
    )]
    fn _check_retry(
        &self,
        max_attempts: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        budget: Option<&Bound<'_, PyAny>>,
        shard_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let timeout = convert::seconds("timeout", timeout)?;
        retry::policy(max_attempts, timeout, budget)?;
        convert::shard_key(shard_key)?;
        Ok(())
    }

    /// `retry` for asyncio: `await lst.retry_async(async_fn, ...)` where `async_fn(peer)`
    /// returns an awaitable; waiting for a peer blocks no thread.
    #[pyo3(signature = (fn_, /, *, max_attempts=None, timeout=None, budget=None, shard_key=None))]
    #[pyo3(
        text_signature = "($self, fn, /, *, max_attempts=3, timeout=None, budget=None, shard_key=None)"
    )]
    fn retry_async<'py>(
        &self,
        py: Python<'py>,
        fn_: &Bound<'py, PyAny>,
        max_attempts: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
        budget: Option<&Bound<'py, PyAny>>,
        shard_key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let call = self.retry_call(fn_, max_attempts, timeout, budget, shard_key)?;
        py.import(intern!(py, "peerlb._retry"))?
            .call_method1(intern!(py, "drive_async"), (call, fn_))
    }

    /// The strategy's name.
    #[getter]
    fn strategy(&self) -> String {
        self.inner.strategy_name().to_owned()
    }

    /// Whether the list is running.
    #[getter]
    fn running(&self) -> bool {
        self.inner.is_running()
    }

    /// Does nothing: the baseline of the Python benchmark (`make bench-python`).
    fn _noop(&self) {}

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "<peerlb.PeerList strategy={:?} {}>",
            self.inner.strategy_name(),
            self.inner.introspect().summary
        )
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        check(py, slf.get().inner.start())?;
        Ok(slf.clone())
    }

    /// Stops the list unless it is already stopped. A stop error is raised only when the
    /// block itself did not raise (it must not hide the block's exception).
    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        match self.inner.stop() {
            Ok(()) => Ok(false),
            Err(e) if e.code() == ErrorCode::NotStarted => Ok(false),
            Err(_) if exc_type.is_some() => Ok(false),
            Err(e) => Err(to_pyerr(py, &e)),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(t) = &self.transport {
            t.traverse(&visit)?;
        }
        if let Ok(subs) = self.subscriptions.try_lock() {
            for s in subs.iter() {
                s.traverse(&visit)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        if let Some(t) = &self.transport {
            drop(t.clear());
        }
        let subs =
            std::mem::take(&mut *self.subscriptions.lock().unwrap_or_else(|e| e.into_inner()));
        for s in subs {
            s.cancel();
        }
    }
}

impl PyPeerList {
    /// The core step-by-step retry of one `retry` / `retry_async` call.
    fn retry_call(
        &self,
        fn_: &Bound<'_, PyAny>,
        max_attempts: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        budget: Option<&Bound<'_, PyAny>>,
        shard_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<retry::PyRetryCall> {
        if !fn_.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "retry needs a callable taking the peer id, not {}",
                convert::type_name(fn_)
            )));
        }
        let timeout = convert::seconds("timeout", timeout)?;
        let policy = retry::policy(max_attempts, timeout, budget)?;
        let key = convert::shard_key(shard_key)?;
        Ok(retry::PyRetryCall::new(
            self.inner.clone(),
            &policy,
            timeout.is_some(),
            key,
        ))
    }
}

/// The peers of an introspection as dicts.
fn peer_dicts<'py>(
    py: Python<'py>,
    peers: Vec<peerlb::PeerIntrospection>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for p in peers {
        let pd = PyDict::new(py);
        pd.set_item("id", p.id)?;
        pd.set_item("status", p.status)?;
        pd.set_item("pending", p.pending)?;
        pd.set_item("weight", p.weight)?;
        pd.set_item("admin", p.admin)?;
        pd.set_item("ejected", p.ejected)?;
        pd.set_item("ejected_for_ms", p.ejected_for_ms)?;
        pd.set_item("ejections", p.ejections)?;
        pd.set_item("consecutive_failures", p.consecutive_failures)?;
        pd.set_item("chosen", p.chosen)?;
        pd.set_item("failures", p.failures)?;
        list.append(pd)?;
    }
    Ok(list)
}
