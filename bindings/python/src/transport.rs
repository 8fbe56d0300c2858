//! Python transports (objects with `retain(peer_id, subscriber)` and
//! `release(peer_id, subscriber)`) and the `Subscriber` handle they report through.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use peerlb::{PeerId, Subscriber, Transport};
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

use crate::convert;
use crate::errors::guard;

thread_local! {
    /// A `KeyboardInterrupt`/`SystemExit` (any non-`Exception`) that a transport raised on
    /// this thread: core records the call as `transport-failed`, and the binding re-raises
    /// this instead once core returns, so Ctrl-C inside a slow `retain` still stops the
    /// program.
    static INTERRUPT: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Takes the interrupt a transport raised on this thread during the last call into core.
pub fn take_interrupt() -> Option<PyErr> {
    INTERRUPT.with(|slot| slot.borrow_mut().take())
}

/// The handle through which a transport reports one peer's status to one list.
///
/// Handed to `retain` and `release`; `set_status` may be called from any thread, at any
/// time, also from inside `retain`. Two handles compare equal (and hash alike) when they
/// stand for the same peer of the same list, so a transport can key on them.
#[pyclass(module = "peerlb._peerlb", name = "Subscriber", frozen)]
pub struct PySubscriber {
    inner: Subscriber,
}

#[pymethods]
impl PySubscriber {
    /// Reports the peer's connection status: `"available"`, `"connecting"` or
    /// `"unavailable"`. Returns whether the list took it (`False` once the peer was
    /// released or the list is gone).
    fn set_status(&self, status: &Bound<'_, PyAny>) -> PyResult<bool> {
        let py = status.py();
        guard(py, || {
            let status = convert::status(status)?;
            // A report may make core wake waiters and deliver events: without the GIL.
            Ok(py.detach(|| self.inner.set_status(status)))
        })
    }

    /// The id of the peer this handle reports on.
    #[getter]
    fn peer_id(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || Ok(self.inner.peer_id().to_string()))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PySubscriber>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        let mut h = DefaultHasher::new();
        (self.inner.as_ptr() as usize).hash(&mut h);
        h.finish()
    }

    fn __repr__(&self) -> String {
        format!(
            "<peerlb.Subscriber peer={:?}>",
            self.inner.peer_id().as_str()
        )
    }
}

/// A core `Transport` that calls a Python object, taking the GIL for each call.
///
/// Core never holds a lock while it calls a transport, so the Python methods may call back
/// into the list (update, set_status) on this thread or any other.
pub struct PyTransport {
    obj: Mutex<Option<Py<PyAny>>>,
    name: String,
}

impl PyTransport {
    /// Wraps `obj` after checking it has callable `retain` and `release`.
    pub fn new(obj: &Bound<'_, PyAny>) -> PyResult<PyTransport> {
        for method in ["retain", "release"] {
            let callable = obj
                .getattr(method)
                .map(|m| m.is_callable())
                .unwrap_or(false);
            if !callable {
                return Err(PyTypeError::new_err(format!(
                    "transport must have callable retain(peer_id, subscriber) and \
                     release(peer_id, subscriber) methods; {} has no {method}()",
                    convert::type_name(obj)
                )));
            }
        }
        let name = obj
            .getattr("name")
            .ok()
            .and_then(|n| n.extract::<String>().ok())
            .unwrap_or_else(|| "custom".to_owned());
        Ok(PyTransport {
            obj: Mutex::new(Some(obj.clone().unbind())),
            name,
        })
    }

    fn call(&self, method: &str, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        Python::attach(|py| {
            // A list dropped while an exception is propagating (e.g. a coroutine's locals
            // freed after `return` set StopIteration) releases its peers from inside
            // tp_dealloc: keep that exception aside while the transport runs, like CPython
            // does around __del__, or it would be lost.
            let propagating = PyErr::take(py);
            let result = self.call_attached(py, method, id, subscriber);
            if let Some(e) = propagating {
                e.restore(py);
            }
            result
        })
    }

    fn call_attached(
        &self,
        py: Python<'_>,
        method: &str,
        id: &PeerId,
        subscriber: &Subscriber,
    ) -> Result<(), String> {
        {
            let obj = self
                .obj
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|o| o.clone_ref(py))
                .ok_or_else(|| "the transport was cleared by the garbage collector".to_owned())?;
            let sub = PySubscriber {
                inner: subscriber.clone(),
            };
            obj.bind(py)
                .call_method1(method, (id.as_str(), sub))
                .map(|_| ())
                .map_err(|e| {
                    if !e.is_instance_of::<PyException>(py) {
                        let kept = e.clone_ref(py);
                        INTERRUPT.with(|slot| *slot.borrow_mut() = Some(kept));
                    }
                    describe(py, &e)
                })
        }
    }

    /// GC support: the list's `__traverse__` visits the transport object.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(guard) = self.obj.try_lock() {
            if let Some(obj) = guard.as_ref() {
                visit.call(obj)?;
            }
        }
        Ok(())
    }

    /// GC support: drops the transport object (breaking a list ↔ transport cycle).
    pub fn clear(&self) -> Option<Py<PyAny>> {
        self.obj.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// `"RuntimeError: boom"`.
fn describe(py: Python<'_>, e: &PyErr) -> String {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "exception".to_owned());
    let text = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    if text.is_empty() {
        kind
    } else {
        format!("{kind}: {text}")
    }
}

impl Transport for PyTransport {
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        self.call("retain", id, subscriber)
    }

    fn release(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        self.call("release", id, subscriber)
    }

    fn name(&self) -> &str {
        &self.name
    }
}
