//! Core errors → the `peerlb.PeerlbError` hierarchy.
//!
//! The exception classes are defined in Python (`peerlb/_errors.py`) because two of them
//! subclass builtins as well (`ChooseTimeout` is a `TimeoutError`, `InvalidArgument` a
//! `ValueError`), which is plain multiple inheritance there. This module looks them up once
//! by code (`_errors._BY_CODE`) and instantiates them with the core error's message and
//! details.

use std::panic::{catch_unwind, AssertUnwindSafe};

use peerlb::{Error, ErrorCode};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList};

static BY_CODE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    BY_CODE
        .get_or_try_init(py, || {
            let module = py.import("peerlb._errors")?;
            Ok::<_, PyErr>(module.getattr("_BY_CODE")?.cast_into::<PyDict>()?.unbind())
        })
        .map(|d| d.bind(py))
}

/// The exception object for one core error (with `.errors`, `.peer`, `.operation`,
/// `.remote_code`).
fn build<'py>(py: Python<'py>, error: &Error) -> PyResult<Bound<'py, PyAny>> {
    let code = error.code();
    let class = classes(py)?
        .get_item(code.as_str())?
        .ok_or_else(|| PyRuntimeError::new_err(format!("peerlb: no exception class for {code}")))?;
    let kwargs = PyDict::new(py);
    match error {
        Error::Multiple(inner) => {
            let list = PyList::empty(py);
            for e in inner {
                list.append(build(py, e)?)?;
            }
            kwargs.set_item("errors", list)?;
        }
        Error::PeerAlreadyInList(peer) | Error::PeerNotInList(peer) => {
            kwargs.set_item("peer", peer)?;
        }
        Error::TransportFailed {
            operation, peer, ..
        } => {
            kwargs.set_item("peer", peer)?;
            kwargs.set_item("operation", *operation)?;
        }
        Error::RemoteSystem(remote) => {
            kwargs.set_item("peer", &remote.peer)?;
            kwargs.set_item("remote_code", remote.code)?;
        }
        _ => {}
    }
    class.call((error.to_string(),), Some(&kwargs))
}

/// Converts a core error into the matching Python exception.
pub fn to_pyerr(py: Python<'_>, error: &Error) -> PyErr {
    match build(py, error) {
        Ok(value) => PyErr::from_value(value),
        Err(failed) => failed,
    }
}

/// A `peerlb.InvalidArgument` (also a `ValueError`) with `message`.
pub fn invalid_argument(py: Python<'_>, message: impl Into<String>) -> PyErr {
    to_pyerr(py, &Error::InvalidArgument(message.into()))
}

/// Converts the result of a core call that may have called a Python transport
/// (`check(py, list.start())?`); a `KeyboardInterrupt`/`SystemExit` raised by the
/// transport wins over core's result.
pub fn check<T>(py: Python<'_>, result: peerlb::Result<T>) -> PyResult<T> {
    if let Some(interrupt) = crate::transport::take_interrupt() {
        return Err(interrupt);
    }
    result.map_err(|e| to_pyerr(py, &e))
}

/// Runs the body of one entry point (a method, getter or function called from Python),
/// turning a Rust panic into `peerlb.InternalError` (code `internal`, with the panic's
/// message) so that no pyo3 `PanicException` reaches Python. Every entry point's body runs
/// in one: `fn start(&self, py: Python<'_>) -> PyResult<()> { guard(py, || ...) }`.
#[inline]
pub fn guard<T>(py: Python<'_>, body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(to_pyerr(py, &Error::from_panic(payload.as_ref()))),
    }
}

/// Panics inside [`guard`] (`peerlb._peerlb._panic`): how the tests check that a panic
/// reaches Python as `peerlb.InternalError`, since no public call is known to panic.
#[pyfunction]
pub fn _panic(py: Python<'_>, message: &str) -> PyResult<()> {
    guard(py, || panic!("{message}"))
}

/// `peerlb.AlreadyFinished` for a choice of `peer` finished a second time.
pub fn already_finished(py: Python<'_>, peer: &str) -> PyErr {
    to_pyerr(py, &Error::already_finished(peer))
}

/// Every code and its kebab-case name (exported to Python as `_peerlb.ERROR_CODES`).
pub fn codes() -> Vec<(&'static str, u32)> {
    ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str(), c.as_u32()))
        .collect()
}
