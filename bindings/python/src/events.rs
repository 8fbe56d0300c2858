//! Peer events in Python: `PeerList.subscribe(callback)` → `Subscription`, and the
//! `PeerEvent` objects the callback receives.
//!
//! Core delivers events outside its locks, one at a time and in order, usually on the
//! thread that made the change (the caller's, or a library thread for timers and health
//! probes); when another thread is delivering that list's events at the moment, that
//! thread delivers it, possibly after the causing call has returned. The
//! callback is called with the GIL taken there. An exception it raises is reported through
//! `sys.unraisablehook` (like an exception in `__del__`) and does not reach the list.

use std::sync::{Arc, Mutex};

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::PyTraverseError;

use crate::errors::guard;
use crate::upstream::PyCall;

/// One peer event (`peerlb.PeerEvent`): what happened (`kind`), to which `peer`, and a
/// `detail` for people (e.g. the ejection time), possibly empty.
#[pyclass(module = "peerlb._peerlb", name = "PeerEvent", frozen)]
pub struct PyPeerEvent {
    kind: &'static str,
    peer: String,
    detail: String,
}

#[pymethods]
impl PyPeerEvent {
    /// `"added"`, `"removed"`, `"available"`, `"unavailable"`, `"ejected"`, `"restored"`,
    /// `"disabled"` or `"enabled"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// The peer's id.
    #[getter]
    fn peer(&self) -> &str {
        &self.peer
    }

    /// More about the event, for people (e.g. `"5 consecutive failures; ejected for
    /// 30s"`), or `""`.
    #[getter]
    fn detail(&self) -> &str {
        &self.detail
    }

    /// `"<kind> <peer>"`.
    fn __str__(&self) -> String {
        format!("{} {}", self.kind, self.peer)
    }

    fn __repr__(&self) -> String {
        format!(
            "<peerlb.PeerEvent {} {:?} detail={:?}>",
            self.kind, self.peer, self.detail
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyPeerEvent>().is_ok_and(|o| {
            let o = o.get();
            o.kind == self.kind && o.peer == self.peer && o.detail == self.detail
        })
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.kind, &self.peer, &self.detail).hash(&mut h);
        h.finish()
    }
}

/// One subscription: the Python callback (cleared on cancel or by the garbage collector)
/// and core's subscription (dropping it unsubscribes).
pub struct SubEntry {
    callback: Arc<Mutex<Option<Py<PyAny>>>>,
    core: Mutex<Option<peerlb::Subscription>>,
}

impl SubEntry {
    /// Subscribes `callback` (checked callable) to `list`'s events.
    pub fn subscribe(list: &peerlb::PeerList, callback: &Bound<'_, PyAny>) -> PyResult<SubEntry> {
        if !callback.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "subscribe() needs a callable taking a peerlb.PeerEvent, not {}",
                crate::convert::type_name(callback)
            )));
        }
        let slot = Arc::new(Mutex::new(Some(callback.clone().unbind())));
        let target = slot.clone();
        let core = list.subscribe(move |event| deliver(&target, event));
        Ok(SubEntry {
            callback: slot,
            core: Mutex::new(Some(core)),
        })
    }

    /// An entry for `callback` (checked callable), subscribed by `subscribe` to some event
    /// stream of a list; `subscribe` gets the callback's slot to deliver to (see
    /// [`deliver_with`]).
    pub fn subscribe_with(
        what: &str,
        callback: &Bound<'_, PyAny>,
        subscribe: impl FnOnce(Arc<Mutex<Option<Py<PyAny>>>>) -> peerlb::Subscription,
    ) -> PyResult<SubEntry> {
        if !callback.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{what} needs a callable, not {}",
                crate::convert::type_name(callback)
            )));
        }
        let slot = Arc::new(Mutex::new(Some(callback.clone().unbind())));
        let core = subscribe(slot.clone());
        Ok(SubEntry {
            callback: slot,
            core: Mutex::new(Some(core)),
        })
    }

    /// Whether it still delivers.
    pub fn active(&self) -> bool {
        self.core
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Unsubscribes and drops the callback (needs the GIL for the drop). Returns whether it
    /// was active.
    pub fn cancel(&self) -> bool {
        let core = self.core.lock().unwrap_or_else(|e| e.into_inner()).take();
        let callback = self
            .callback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(callback);
        let was = core.is_some();
        drop(core);
        was
    }

    /// GC support (called by the list that owns the entry).
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(guard) = self.callback.try_lock() {
            if let Some(cb) = guard.as_ref() {
                visit.call(cb)?;
            }
        }
        Ok(())
    }
}

/// Calls the Python callback for one event (core calls this outside its locks).
fn deliver(slot: &Mutex<Option<Py<PyAny>>>, event: &peerlb::PeerEvent) {
    deliver_with(slot, "peerlb event subscriber", |py| {
        Ok(Py::new(
            py,
            PyPeerEvent {
                kind: event.kind.as_str(),
                peer: event.peer.as_str().to_owned(),
                detail: event.detail.clone(),
            },
        )?
        .into_any())
    });
}

/// Calls the Python callback in `slot` with the value `make` builds (with the GIL taken),
/// as peer events are delivered: an exception is reported through `sys.unraisablehook`
/// (under `context`), and an exception already propagating is kept.
pub fn deliver_with(
    slot: &Mutex<Option<Py<PyAny>>>,
    context: &str,
    make: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>,
) {
    let Ok(_call) = PyCall::enter() else {
        return;
    };
    Python::attach(|py| {
        let Some(callback) = slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.clone_ref(py))
        else {
            return;
        };
        // An event delivered while an exception propagates (e.g. from a list freed during
        // unwinding) must not lose that exception: keep it aside, as CPython does around
        // __del__.
        let propagating = PyErr::take(py);
        if let Err(e) = make(py).and_then(|value| callback.call1(py, (value,))) {
            // Like an exception in `__del__` (even KeyboardInterrupt): reported, not
            // raised, since the list operation that caused the event must not fail.
            let context = PyString::new(py, context);
            e.write_unraisable(py, Some(&context));
        }
        if let Some(e) = propagating {
            e.restore(py);
        }
    });
}

/// A subscription to a list's events (`peerlb.Subscription`), returned by
/// `PeerList.subscribe`. It lasts as long as the list unless cancelled: `cancel()`, or use
/// it as a context manager (cancelled at the end of the block).
#[pyclass(module = "peerlb._peerlb", name = "Subscription", frozen)]
pub struct PySubscription {
    entry: Arc<SubEntry>,
    /// The list that owns the entry (and visits its callback): holding it here lets the
    /// garbage collector follow `object -> Subscription -> list -> callback -> object`.
    list: Mutex<Option<Py<PyAny>>>,
}

impl PySubscription {
    /// The handle of `entry`, which `list` owns too.
    pub fn new(entry: Arc<SubEntry>, list: Py<PyAny>) -> PySubscription {
        PySubscription {
            entry,
            list: Mutex::new(Some(list)),
        }
    }
}

#[pymethods]
impl PySubscription {
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(guard) = self.list.try_lock() {
            if let Some(list) = guard.as_ref() {
                visit.call(list)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(list);
    }

    /// Stops delivering events to the callback (an event being delivered right now on
    /// another thread may still arrive). Returns whether it was active.
    fn cancel(&self, py: Python<'_>) -> PyResult<bool> {
        guard(py, || Ok(self.entry.cancel()))
    }

    /// The same as `cancel()` (the name the other surfaces use).
    fn unsubscribe(&self, py: Python<'_>) -> PyResult<bool> {
        self.cancel(py)
    }

    /// Whether events are still delivered.
    #[getter]
    fn active(&self, py: Python<'_>) -> PyResult<bool> {
        guard(py, || Ok(self.entry.active()))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Cancels the subscription.
    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        guard(py, || {
            self.entry.cancel();
            Ok(false)
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let active = self.active(py)?;
        Ok(format!(
            "<peerlb.Subscription {}>",
            if active { "active" } else { "cancelled" }
        ))
    }
}
