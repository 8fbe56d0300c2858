//! `peerlb.PeerList`: core's `PeerList` for Python.
//!
//! Every option the caller did not give stays unset, so core applies its own default.
//! Core calls that can take longer than a few microseconds (`update`, `start`, `stop`,
//! admin, introspection) run with the GIL released; `choose`'s fast path keeps it.

use std::sync::{Arc, Mutex};

use peerlb::admin::AdminOp;
use peerlb::{ErrorCode, ListOptions, NowOrLater, Request};
use pyo3::exceptions::PyTypeError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyList, PyMapping, PyString, PyType};
use pyo3::PyTraverseError;

use crate::choice::PyChoice;
use crate::errors::{check, guard, to_pyerr};
use crate::transport::PyTransport;
use crate::{convert, events, retry, session, wait};

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

/// The `ejection` argument: `True` (core's default policy), `False` (off), or a mapping of
/// option names to ints, parsed by core (`EjectionPolicy::set`). `None` when not given.
fn ejection_arg(obj: &Bound<'_, PyAny>) -> PyResult<Option<peerlb::EjectionPolicy>> {
    let py = obj.py();
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(b.is_true().then(peerlb::EjectionPolicy::default));
    }
    let Ok(map) = obj.cast::<PyMapping>() else {
        return Err(PyTypeError::new_err(format!(
            "ejection must be a bool or a dict of options (failures, base_ms, max_ms, \
             max_percent, panic_percent), not {}",
            convert::type_name(obj)
        )));
    };
    let mut policy = peerlb::EjectionPolicy::default();
    for item in map.items()?.iter() {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let key = convert::string("an ejection option name", &key)?;
        // Core parses the value and judges its range; an int beyond u64 stops here.
        let value = convert::u64_arg(&format!("ejection option {key:?}"), &value)?;
        check(py, policy.set(&key, &value.to_string()))?;
    }
    Ok(Some(policy))
}

/// The request of one `choose`: a deadline `timeout` from now (if given) and a shard key.
fn request(timeout: Option<std::time::Duration>, key: Option<&[u8]>) -> Request<'_> {
    let mut request = Request::new();
    if let Some(t) = timeout {
        request = request.with_timeout(t);
    }
    if let Some(k) = key {
        request = request.with_shard_key(k);
    }
    request
}

impl PyPeerList {
    /// One admin operation, with the GIL released (a removal calls the transport).
    fn admin(&self, py: Python<'_>, op: AdminOp, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        guard(py, || {
            let id = convert::string("peer", peer)?;
            let result = check(py, py.detach(|| self.inner.admin(op, &id)))?;
            let class = ADMIN_RESULT.import(py, "peerlb._types", "AdminResult")?;
            Ok(class.call1((result.as_u32(),))?.unbind())
        })
    }

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
            return Err(PyTypeError::new_err(format!(
                "retry needs a callable taking the peer id, not {}",
                convert::type_name(fn_)
            )));
        }
        let timeout = convert::seconds("timeout", timeout)?;
        let policy = retry::policy(max_attempts, timeout, budget)?;
        let key = convert::shard_key(shard_key)?;
        Ok(retry::PyRetryCall::new(self.inner.clone(), &policy, key))
    }
}

#[pymethods]
impl PyPeerList {
    #[new]
    #[pyo3(
        signature = (strategy=None, *, shuffle=None, seed=None, fail_fast=None, transport=None, ejection=None, clock=None, name=None, max_pending=None, max_pending_per_peer=None, metrics=None, peer_labels=None, capacity=None, local_zone=None, min_cluster_size=None, overprovisioning_factor=None, subset=None, subset_client=None),
        text_signature = "(strategy=None, *, shuffle=None, seed=None, fail_fast=None, transport=None, ejection=None, clock=None, name=None, max_pending=None, max_pending_per_peer=None, metrics=None, peer_labels=None, capacity=None, local_zone=None, min_cluster_size=None, overprovisioning_factor=None, subset=None, subset_client=None)"
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
        name: Option<&Bound<'_, PyAny>>,
        max_pending: Option<&Bound<'_, PyAny>>,
        max_pending_per_peer: Option<&Bound<'_, PyAny>>,
        metrics: Option<&Bound<'_, PyAny>>,
        peer_labels: Option<&Bound<'_, PyAny>>,
        capacity: Option<&Bound<'_, PyAny>>,
        local_zone: Option<&Bound<'_, PyAny>>,
        min_cluster_size: Option<&Bound<'_, PyAny>>,
        overprovisioning_factor: Option<&Bound<'_, PyAny>>,
        subset: Option<&Bound<'_, PyAny>>,
        subset_client: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        guard(py, || {
            use convert::given;
            let mut options = ListOptions::default();
            if let Some(s) = given(strategy) {
                options = check(py, options.strategy_name(&convert::string("strategy", s)?))?;
            }
            if let Some(b) = given(shuffle) {
                options = options.shuffle(convert::boolean("shuffle", b)?);
            }
            if let Some(b) = given(fail_fast) {
                options = options.fail_fast(convert::boolean("fail_fast", b)?);
            }
            if let Some(seed) = given(seed) {
                options = options.seed(convert::u64_arg("seed", seed)?);
            }
            if let Some(e) = given(ejection) {
                options = options.ejection(ejection_arg(e)?);
            }
            if let Some(c) = given(clock) {
                options = options.clock(retry::clock_arg(c)?);
            }
            if let Some(n) = given(name) {
                options = options.name(convert::string("name", n)?);
            }
            // Limits go to core as given (0 included): core judges them.
            if let Some(m) = given(max_pending) {
                options = options.max_pending(convert::usize_limit("max_pending", m)?);
            }
            if let Some(m) = given(max_pending_per_peer) {
                options =
                    options.max_pending_per_peer(convert::usize_limit("max_pending_per_peer", m)?);
            }
            if let Some(b) = given(metrics) {
                options = options.metrics(convert::boolean("metrics", b)?);
            }
            if let Some(b) = given(peer_labels) {
                options = options.peer_labels(convert::boolean("peer_labels", b)?);
            }
            if let Some(c) = given(capacity) {
                let capacity = convert::u64_arg("capacity", c)?;
                options = options.capacity(usize::try_from(capacity).unwrap_or(usize::MAX));
            }
            if let Some(z) = given(local_zone) {
                options = options.local_zone(convert::string("local_zone", z)?);
            }
            if let Some(n) = given(min_cluster_size) {
                let n = convert::u64_arg("min_cluster_size", n)?;
                options = options.min_cluster_size(usize::try_from(n).unwrap_or(usize::MAX));
            }
            if let Some(f) = given(overprovisioning_factor) {
                options =
                    options.overprovisioning_factor(convert::number("overprovisioning_factor", f)?);
            }
            // Each as given: the core decides whether the pair makes sense.
            if let Some(n) = given(subset) {
                options = options.subset(convert::usize_limit("subset", n)?);
            }
            if let Some(c) = given(subset_client) {
                options = options.subset_client(convert::u64_arg("subset_client", c)?);
            }
            let mut py_transport = None;
            if let Some(t) = given(transport) {
                if let Ok(spec) = t.cast::<PyString>() {
                    // A built-in transport by spec: "always-available",
                    // "tcp-probe?interval_ms=200&timeout_ms=100", ...
                    let spec = convert::text("transport", spec)?;
                    options = options.transport(check(py, peerlb::transport_from_spec(&spec))?);
                } else {
                    let wrapped = Arc::new(PyTransport::new(t)?);
                    options = options.transport(wrapped.clone());
                    py_transport = Some(wrapped);
                }
            }
            let inner = check(py, peerlb::PeerList::new(options))?;
            Ok(PyPeerList {
                inner,
                transport: py_transport,
                subscriptions: Mutex::new(Vec::new()),
            })
        })
    }

    /// Adds and removes peers (removals first). Applies everything it can and raises one
    /// error for all failures (`.errors` lists them). The GIL is released while core works.
    #[pyo3(signature = (add=None, remove=None), text_signature = "($self, add=(), remove=())")]
    fn update(
        &self,
        py: Python<'_>,
        add: Option<&Bound<'_, PyAny>>,
        remove: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        guard(py, || {
            let additions = convert::additions("add", add)?;
            let removals = convert::removals(remove)?;
            check(py, py.detach(|| self.inner.update(additions, removals)))
        })
    }

    /// Starts the list: retains every peer through the transport (GIL released).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || check(py, py.detach(|| self.inner.start())))
    }

    /// Stops the list: releases every peer; waiting `choose` calls fail with `NotStarted`.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || check(py, py.detach(|| self.inner.stop())))
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
        guard(py, || {
            let timeout = convert::seconds("timeout", timeout)?;
            let key = convert::shard_key(shard_key)?;
            let result = match self.inner.choose_now(&request(timeout, key.as_deref())) {
                NowOrLater::Now(result) => result,
                NowOrLater::Later(later) => wait::block(py, later)?,
            };
            result
                .map(PyChoice::from_core)
                .map_err(|e| to_pyerr(py, &e))
        })
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
        guard(py, || {
            let timeout = convert::seconds("timeout", timeout)?;
            let key = convert::shard_key(shard_key)?;
            let event_loop = py
                .import(intern!(py, "asyncio"))?
                .call_method0(intern!(py, "get_running_loop"))?;
            let future = event_loop.call_method0(intern!(py, "create_future"))?;
            match self.inner.choose_now(&request(timeout, key.as_deref())) {
                NowOrLater::Now(Ok(choice)) => {
                    future
                        .call_method1(intern!(py, "set_result"), (PyChoice::from_core(choice),))?;
                }
                NowOrLater::Now(Err(e)) => {
                    future.call_method1(
                        intern!(py, "set_exception"),
                        (to_pyerr(py, &e).into_value(py),),
                    )?;
                }
                NowOrLater::Later(later) => {
                    let deliver: wait::Deliver<peerlb::Result<peerlb::Choice>> =
                        Box::new(|py, result| {
                            wait::choice_value(py, result.map_err(|e| to_pyerr(py, &e)))
                        });
                    wait::spawn(py, later, &event_loop, &future, deliver)?;
                }
            }
            Ok(future)
        })
    }

    /// A snapshot of the list as a dict (core's part runs with the GIL released).
    fn introspect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guard(py, || {
            let snap = py.detach(|| self.inner.introspect());
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
            d.set_item("name", snap.name)?;
            d.set_item("pending", snap.pending)?;
            d.set_item("max_pending", snap.max_pending)?;
            d.set_item("max_pending_per_peer", snap.max_pending_per_peer)?;
            d.set_item("overloaded", snap.overloaded)?;
            d.set_item("sessions", snap.sessions)?;
            match snap.subset {
                Some(subset) => {
                    let sd = PyDict::new(py);
                    sd.set_item("size", subset.size)?;
                    sd.set_item("client", subset.client)?;
                    sd.set_item("offered", subset.offered)?;
                    d.set_item("subset", sd)?;
                }
                None => d.set_item("subset", py.None())?,
            }
            let levels = PyList::empty(py);
            for level in snap.priorities {
                let ld = PyDict::new(py);
                ld.set_item("priority", level.priority)?;
                ld.set_item("load", level.load)?;
                ld.set_item("healthy", level.healthy)?;
                ld.set_item("enabled", level.enabled)?;
                ld.set_item("panic", level.panic)?;
                levels.append(ld)?;
            }
            d.set_item("priorities", levels)?;
            d.set_item("peers", peer_dicts(py, snap.peers)?)?;
            Ok(d)
        })
    }

    /// The list's name (`name=`, or `list-N` when it was made without one): its `list`
    /// label in metrics and its path on the admin endpoint.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The list's metrics in the Prometheus text format (empty with `metrics=False`);
    /// core's part runs with the GIL released.
    fn metrics(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || Ok(py.detach(|| self.inner.metrics())))
    }

    /// Every backend with its admin and ejection state: `introspect()["peers"]`.
    fn list_backends<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        guard(py, || {
            let backends = py.detach(|| self.inner.list_backends());
            peer_dicts(py, backends)
        })
    }

    /// Admin: no new requests go to `peer` (in-flight ones finish); it stays disabled
    /// across updates until `enable`. Returns `AdminResult.SUCCESS` or
    /// `AdminResult.NO_ACTION_REQUIRED`; raises `PeerNotInList`/`InvalidArgument` (failed).
    fn disable(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.admin(py, AdminOp::Disable, peer)
    }

    /// Admin: undoes `disable`. Same results as `disable`.
    fn enable(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.admin(py, AdminOp::Enable, peer)
    }

    /// Admin: clears `peer`'s ejection and failure history (an ejected peer comes back
    /// now). Same results as `disable`.
    fn reset(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.admin(py, AdminOp::Reset, peer)
    }

    /// Admin: removes `peer` from the list (as `update(remove=[peer])`) and forgets its
    /// admin state. Same results as `disable`.
    fn delete(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.admin(py, AdminOp::Delete, peer)
    }

    /// Admin: asks every open session bound to `peer` to move to another peer (their
    /// `failover_requested` turns true; session subscribers hear `failover-requested`).
    /// `AdminResult.SUCCESS`, or `AdminResult.NO_ACTION_REQUIRED` when no session is
    /// bound there; raises `PeerNotInList`/`InvalidArgument` (failed).
    fn failover(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.admin(py, AdminOp::Failover, peer)
    }

    /// Admin: adds the backend described by `data`, JSON text (`str` or `bytes`) or a
    /// dict, `{"id": "host:port", "weight": 2}`. Returns the answer as JSON text:
    /// `{"result":"success","code":1,"id":...}` or `{"result":"failed","code":4,
    /// "reason":...,"error":...}` (bad data is a failed answer, not an exception).
    fn add_backend(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<String> {
        guard(py, || {
            let text = if data.is_instance_of::<PyDict>() {
                py.import(intern!(py, "json"))?
                    .call_method1(intern!(py, "dumps"), (data,))?
                    .extract::<String>()?
            } else if let Ok(bytes) = data.cast::<pyo3::types::PyBytes>() {
                String::from_utf8(bytes.as_bytes().to_vec()).map_err(|e| {
                    crate::errors::invalid_argument(py, format!("backend data is not UTF-8: {e}"))
                })?
            } else {
                convert::string("data", data)?
            };
            Ok(py.detach(|| self.inner.add_backend(&text)))
        })
    }

    /// Admin: one backend's configuration and state as JSON text (weight, status,
    /// pending, admin and ejection state, counters, open sessions). Raises `PeerNotInList`
    /// for an unknown id.
    fn backend_config(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<String> {
        guard(py, || {
            let id = convert::string("peer", peer)?;
            check(py, py.detach(|| self.inner.backend_config(&id)))
        })
    }

    /// Whether `peer` would be chosen now (retained, available, enabled, not ejected).
    fn available(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<bool> {
        guard(py, || {
            Ok(self.inner.available(&convert::string("peer", peer)?))
        })
    }

    /// Whether `peer` is in the list but not retained (the list is not running).
    fn uninitialized(&self, py: Python<'_>, peer: &Bound<'_, PyAny>) -> PyResult<bool> {
        guard(py, || {
            Ok(self.inner.uninitialized(&convert::string("peer", peer)?))
        })
    }

    /// How many peers would be chosen now.
    fn num_available(&self, py: Python<'_>) -> PyResult<usize> {
        guard(py, || Ok(self.inner.num_available()))
    }

    /// How many retained peers would not be chosen now.
    fn num_unavailable(&self, py: Python<'_>) -> PyResult<usize> {
        guard(py, || Ok(self.inner.num_unavailable()))
    }

    /// How many peers are not retained (the list is not running).
    fn num_uninitialized(&self, py: Python<'_>) -> PyResult<usize> {
        guard(py, || Ok(self.inner.num_uninitialized()))
    }

    /// The retained peers, in the order they were added (empty while not running).
    fn peers(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        guard(py, || {
            Ok(py
                .detach(|| self.inner.peers())
                .iter()
                .map(|p| p.to_string())
                .collect())
        })
    }

    /// The capacity hint the list was made with (10, yarpc's default, unless given).
    #[getter]
    fn capacity(&self, py: Python<'_>) -> PyResult<usize> {
        guard(py, || Ok(self.inner.capacity()))
    }

    /// Opens a session (a `Session`, also a context manager): chooses a peer with
    /// `choose`'s rules (`timeout` waits without the GIL; without it, no peer now fails)
    /// and binds a new session to it; session subscribers hear `created`.
    #[pyo3(signature = (timeout=None, shard_key=None))]
    fn open_session(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
        shard_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<session::PySession> {
        guard(py, || {
            let timeout = convert::seconds("timeout", timeout)?;
            let key = convert::shard_key(shard_key)?;
            let answer = self
                .inner
                .open_session_now(&session::request_of(timeout, key.as_deref()));
            let result = match answer {
                NowOrLater::Now(result) => result,
                NowOrLater::Later(later) => wait::block(py, later)?,
            };
            result
                .map(session::PySession::from_core)
                .map_err(|e| to_pyerr(py, &e))
        })
    }

    /// `open_session` for asyncio: a future of the running loop; waiting blocks no thread.
    /// Cancelling it abandons the wait (a session opened meanwhile is closed).
    #[pyo3(signature = (timeout=None, shard_key=None))]
    fn open_session_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
        shard_key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard(py, || {
            let timeout = convert::seconds("timeout", timeout)?;
            let key = convert::shard_key(shard_key)?;
            let answer = self
                .inner
                .open_session_now(&session::request_of(timeout, key.as_deref()));
            session::future_of(py, answer, session::session_value)
        })
    }

    /// Calls `callback(event)` (a `SessionEvent`) for every session event (`created`,
    /// `terminated`, `failover-requested`), with the delivery rules of `subscribe`.
    /// Returns a `Subscription`.
    fn subscribe_sessions(
        slf: &Bound<'_, Self>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<events::PySubscription> {
        guard(slf.py(), || {
            let this = slf.get();
            let entry = Arc::new(session::subscribe(&this.inner, callback)?);
            let mut subs = this.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
            subs.retain(|s| s.active());
            subs.push(entry.clone());
            Ok(events::PySubscription::new(
                entry,
                slf.clone().into_any().unbind(),
            ))
        })
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
        guard(slf.py(), || {
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
        })
    }

    /// Calls `fn(peer)` with a chosen peer until it returns (its value is returned):
    /// an exception is a failed attempt (retried on another peer), `peerlb.Declined`
    /// stops at once. See `peerlb._retry` and the stubs for the whole contract.
    #[pyo3(signature = (fn_, /, *, max_attempts=None, timeout=None, budget=None, shard_key=None))]
    #[pyo3(
        text_signature = "($self, fn, /, *, max_attempts=None, timeout=None, budget=None, shard_key=None)"
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
        guard(py, || {
            let call = self.retry_call(fn_, max_attempts, timeout, budget, shard_key)?;
            py.import(intern!(py, "peerlb._retry"))?
                .call_method1(intern!(py, "drive"), (call, fn_))
        })
    }

    /// Checks `retry`'s options without calling anything (the `retrying` decorator calls
    /// it when it decorates, so bad options fail there and not at the first call).
    #[pyo3(signature = (*, max_attempts=None, timeout=None, budget=None, shard_key=None))]
    #[pyo3(
        text_signature = "($self, *, max_attempts=None, timeout=None, budget=None, shard_key=None)"
    )]
    fn _check_retry(
        &self,
        py: Python<'_>,
        max_attempts: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        budget: Option<&Bound<'_, PyAny>>,
        shard_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        guard(py, || {
            let timeout = convert::seconds("timeout", timeout)?;
            retry::policy(max_attempts, timeout, budget)?;
            convert::shard_key(shard_key)?;
            Ok(())
        })
    }

    /// `retry` for asyncio: `await lst.retry_async(async_fn, ...)` where `async_fn(peer)`
    /// returns an awaitable; waiting for a peer blocks no thread.
    #[pyo3(signature = (fn_, /, *, max_attempts=None, timeout=None, budget=None, shard_key=None))]
    #[pyo3(
        text_signature = "($self, fn, /, *, max_attempts=None, timeout=None, budget=None, shard_key=None)"
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
        guard(py, || {
            let call = self.retry_call(fn_, max_attempts, timeout, budget, shard_key)?;
            py.import(intern!(py, "peerlb._retry"))?
                .call_method1(intern!(py, "drive_async"), (call, fn_))
        })
    }

    /// The strategy's full spec, options included (`"hash-ring?bounded=1.25"`).
    #[getter]
    fn strategy(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || Ok(self.inner.strategy_name().to_owned()))
    }

    /// Whether the list is running.
    #[getter]
    fn running(&self, py: Python<'_>) -> PyResult<bool> {
        guard(py, || Ok(self.inner.is_running()))
    }

    /// Does nothing: the baseline of the Python benchmark (`make bench-python`).
    fn _noop(&self) {}

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        guard(py, || Ok(self.inner.len()))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || {
            let summary = py.detach(|| self.inner.introspect().summary);
            Ok(format!(
                "<peerlb.PeerList strategy={:?} {summary}>",
                self.inner.strategy_name(),
            ))
        })
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.get().start(slf.py())?;
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
        guard(py, || {
            let result = py.detach(|| self.inner.stop());
            if let Some(interrupt) = crate::transport::take_interrupt() {
                return Err(interrupt);
            }
            match result {
                Ok(()) => Ok(false),
                Err(e) if e.code() == ErrorCode::NotStarted => Ok(false),
                Err(_) if exc_type.is_some() => Ok(false),
                Err(e) => Err(to_pyerr(py, &e)),
            }
        })
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
        pd.set_item("zone", p.zone)?;
        pd.set_item("priority", p.priority)?;
        pd.set_item("admin", p.admin)?;
        pd.set_item("ejected", p.ejected)?;
        pd.set_item("ejected_for_ms", p.ejected_for_ms)?;
        pd.set_item("ejections", p.ejections)?;
        pd.set_item("consecutive_failures", p.consecutive_failures)?;
        pd.set_item("chosen", p.chosen)?;
        pd.set_item("failures", p.failures)?;
        pd.set_item("sessions", p.sessions)?;
        list.append(pd)?;
    }
    Ok(list)
}
