//! `peerlb.Session` and `peerlb.SessionEvent`: core's sessions for Python.
//!
//! Every rule (waiting, failover's choice of peer, events, admin interplay) is core's; this
//! module converts arguments and waits the Python way: blocking calls wait with the GIL
//! released in slices (Ctrl-C works), the `_async` forms complete an asyncio future from
//! the library runtime. Dropping (or garbage-collecting) an open `Session` closes it.

use std::sync::{Arc, Mutex};

use peerlb::{NowOrLater, PeerId, Reason, Request};
use pyo3::intern;
use pyo3::prelude::*;

use crate::convert;
use crate::errors::{guard, to_pyerr};
use crate::events::{deliver_with, SubEntry};
use crate::wait;

/// A long-lived connection bound to one peer of a list (`peerlb.Session`), from
/// `PeerList.open_session`. A context manager: the `with` block closes it.
#[pyclass(module = "peerlb._peerlb", name = "Session", frozen)]
pub struct PySession {
    inner: peerlb::Session,
}

impl PySession {
    pub(crate) fn from_core(inner: peerlb::Session) -> PySession {
        PySession { inner }
    }
}

/// The reason of a failover or decline: `reason` (a str; `None` = `""`) and `remote_code`.
fn reason_arg(
    reason: Option<&Bound<'_, PyAny>>,
    code: Option<&Bound<'_, PyAny>>,
) -> PyResult<Reason> {
    let text = match convert::given(reason) {
        Some(r) => convert::string("reason", r)?,
        None => String::new(),
    };
    Ok(match convert::given(code) {
        Some(c) => Reason::new(text).with_code(convert::i64_arg("remote_code", c)?),
        None => Reason::new(text),
    })
}

/// The request of a failover or an open: a deadline `timeout` from now and a shard key.
pub(crate) fn request_of(timeout: Option<std::time::Duration>, key: Option<&[u8]>) -> Request<'_> {
    let mut request = Request::new();
    if let Some(t) = timeout {
        request = request.with_timeout(t);
    }
    if let Some(k) = key {
        request = request.with_shard_key(k);
    }
    request
}

/// A failover's answer as the value that completes a future.
fn peer_value(py: Python<'_>, result: peerlb::Result<PeerId>) -> (Py<PyAny>, bool) {
    match result {
        Ok(peer) => (
            pyo3::types::PyString::new(py, peer.as_str())
                .into_any()
                .unbind(),
            false,
        ),
        Err(e) => (to_pyerr(py, &e).into_value(py).into_any(), true),
    }
}

/// A session (or the error) as the value that completes a future.
pub(crate) fn session_value(
    py: Python<'_>,
    result: peerlb::Result<peerlb::Session>,
) -> (Py<PyAny>, bool) {
    match result
        .map_err(|e| to_pyerr(py, &e))
        .and_then(|s| Py::new(py, PySession::from_core(s)))
    {
        Ok(session) => (session.into_any(), false),
        Err(e) => (e.into_value(py).into_any(), true),
    }
}

/// Completes a new future of the running loop with `answer` now, or from the runtime.
pub(crate) fn future_of<'py, T: Send + 'static>(
    py: Python<'py>,
    answer: NowOrLater<T>,
    deliver: fn(Python<'_>, T) -> (Py<PyAny>, bool),
) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = py
        .import(intern!(py, "asyncio"))?
        .call_method0(intern!(py, "get_running_loop"))?;
    let future = event_loop.call_method0(intern!(py, "create_future"))?;
    match answer {
        NowOrLater::Now(value) => {
            let (value, is_error) = deliver(py, value);
            let method = if is_error {
                intern!(py, "set_exception")
            } else {
                intern!(py, "set_result")
            };
            future.call_method1(method, (value,))?;
        }
        NowOrLater::Later(later) => {
            wait::spawn(py, later, &event_loop, &future, Box::new(deliver))?;
        }
    }
    Ok(future)
}

#[pymethods]
impl PySession {
    /// The session's id: unique within its list, counting from 1; it stays the same
    /// across failovers.
    #[getter]
    fn id(&self, py: Python<'_>) -> PyResult<u64> {
        guard(py, || Ok(self.inner.id()))
    }

    /// The peer the session is bound to (after a failed failover, the peer it left).
    #[getter]
    fn peer(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || Ok(self.inner.peer().to_string()))
    }

    /// Whether an admin asked the session to move (`PeerList.failover(peer)`,
    /// `delete(peer)`, a removal) since it was bound to its peer.
    #[getter]
    fn failover_requested(&self, py: Python<'_>) -> PyResult<bool> {
        guard(py, || Ok(self.inner.failover_requested()))
    }

    /// Whether the session has ended (closed or declined).
    #[getter]
    fn closed(&self, py: Python<'_>) -> PyResult<bool> {
        guard(py, || Ok(!self.inner.is_open()))
    }

    /// Whether the session is bound to a peer now (false once ended, and after a failed
    /// failover).
    #[getter]
    fn bound(&self, py: Python<'_>) -> PyResult<bool> {
        guard(py, || Ok(self.inner.is_bound()))
    }

    /// How many times the session failed over.
    #[getter]
    fn failovers(&self, py: Python<'_>) -> PyResult<u32> {
        guard(py, || Ok(self.inner.failovers()))
    }

    /// Marks a successful exchange: the peer's failure streak ends and the next failover
    /// again prefers every other peer. Raises `AlreadyFinished` on an ended session.
    fn ok(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || self.inner.ok().map_err(|e| to_pyerr(py, &e)))
    }

    /// Fails the session over after an abnormal closure: the attempt ends as a failure
    /// and the session is bound to a different available peer, whose id is returned.
    /// `timeout` (seconds or timedelta) bounds the wait for one (`ChooseTimeout`); without
    /// it, no other peer now is `NoPeerAvailable`. Errors carry `.peer` (the peer left)
    /// and `.remote_code`.
    #[pyo3(signature = (reason=None, timeout=None, *, remote_code=None, shard_key=None))]
    fn failover(
        &self,
        py: Python<'_>,
        reason: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        remote_code: Option<&Bound<'_, PyAny>>,
        shard_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        guard(py, || {
            let reason = reason_arg(reason, remote_code)?;
            let timeout = convert::seconds("timeout", timeout)?;
            let key = convert::shard_key(shard_key)?;
            let answer = self
                .inner
                .failover_now(reason, &request_of(timeout, key.as_deref()));
            let result = match answer {
                NowOrLater::Now(result) => result,
                NowOrLater::Later(later) => wait::block(py, later)?,
            };
            result.map(|p| p.to_string()).map_err(|e| to_pyerr(py, &e))
        })
    }

    /// `failover` for asyncio: a future of the running loop; waiting blocks no thread.
    /// Cancelling it abandons the wait (the session stays open, bound to no peer).
    #[pyo3(signature = (reason=None, timeout=None, *, remote_code=None, shard_key=None))]
    fn failover_async<'py>(
        &self,
        py: Python<'py>,
        reason: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
        remote_code: Option<&Bound<'py, PyAny>>,
        shard_key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard(py, || {
            let reason = reason_arg(reason, remote_code)?;
            let timeout = convert::seconds("timeout", timeout)?;
            let key = convert::shard_key(shard_key)?;
            let answer = self
                .inner
                .failover_now(reason, &request_of(timeout, key.as_deref()));
            future_of(py, answer, peer_value)
        })
    }

    /// The peer declined the session on purpose (e.g. authentication): the session ends,
    /// with no retry, counting neither as failure nor success for the peer. Returns the
    /// `Declined` error describing it (with `.peer` and `.remote_code`), for you to raise
    /// or log. Raises `AlreadyFinished` on an ended session.
    #[pyo3(signature = (reason=None, *, remote_code=None))]
    fn decline<'py>(
        &self,
        py: Python<'py>,
        reason: Option<&Bound<'py, PyAny>>,
        remote_code: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard(py, || {
            let reason = reason_arg(reason, remote_code)?;
            let error = self.inner.decline(reason);
            let exc = to_pyerr(py, &error);
            if error.code() != peerlb::ErrorCode::Declined {
                return Err(exc);
            }
            Ok(exc.into_value(py).into_bound(py).into_any())
        })
    }

    /// Closes the session normally (its attempt ends as ok). Raises `AlreadyFinished` when
    /// it has ended already.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || self.inner.close().map_err(|e| to_pyerr(py, &e)))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the session unless it has ended already.
    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        guard(py, || {
            if self.inner.is_open() {
                let _ = self.inner.close();
            }
            Ok(false)
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || {
            let state = if !self.inner.is_open() {
                "closed"
            } else if self.inner.is_bound() {
                "bound"
            } else {
                "unbound"
            };
            Ok(format!(
                "<peerlb.Session {} peer={:?} {state}>",
                self.inner.id(),
                self.inner.peer().as_str()
            ))
        })
    }
}

/// One session event (`peerlb.SessionEvent`): `kind` (`"created"`, `"terminated"`,
/// `"failover-requested"`), the `session` id, the `peer` and a `reason`.
#[pyclass(module = "peerlb._peerlb", name = "SessionEvent", frozen)]
pub struct PySessionEvent {
    kind: &'static str,
    session: u64,
    peer: String,
    reason: String,
}

#[pymethods]
impl PySessionEvent {
    /// `"created"`, `"terminated"` or `"failover-requested"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// The session's id.
    #[getter]
    fn session(&self) -> u64 {
        self.session
    }

    /// The peer the session was (or is now) bound to.
    #[getter]
    fn peer(&self) -> &str {
        &self.peer
    }

    /// Why: `"opened"`, `"failover"`, the failover's reason, `"declined: ..."`,
    /// `"closed"`, or what the admin did.
    #[getter]
    fn reason(&self) -> &str {
        &self.reason
    }

    /// `"<kind> <session> <peer>"`.
    fn __str__(&self) -> String {
        format!("{} {} {}", self.kind, self.session, self.peer)
    }

    fn __repr__(&self) -> String {
        format!(
            "<peerlb.SessionEvent {} {} {:?} reason={:?}>",
            self.kind, self.session, self.peer, self.reason
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PySessionEvent>().is_ok_and(|o| {
            let o = o.get();
            o.kind == self.kind
                && o.session == self.session
                && o.peer == self.peer
                && o.reason == self.reason
        })
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.kind, self.session, &self.peer, &self.reason).hash(&mut h);
        h.finish()
    }
}

/// Subscribes `callback` to `list`'s session events.
pub(crate) fn subscribe(
    list: &peerlb::PeerList,
    callback: &Bound<'_, PyAny>,
) -> PyResult<SubEntry> {
    SubEntry::subscribe_with(
        "subscribe_sessions()",
        callback,
        |slot: Arc<Mutex<Option<Py<PyAny>>>>| {
            list.subscribe_sessions(move |event| {
                deliver_with(&slot, "peerlb session subscriber", |py| {
                    Ok(Py::new(
                        py,
                        PySessionEvent {
                            kind: event.kind.as_str(),
                            session: event.session,
                            peer: event.peer.as_str().to_owned(),
                            reason: event.reason.clone(),
                        },
                    )?
                    .into_any())
                })
            })
        },
    )
}
