//! Python values → core values, with `TypeError` for wrong types and
//! `peerlb.InvalidArgument` (a `ValueError`) for bad values.

use std::time::Duration;

use peerlb::{ConnectionStatus, Outcome, PeerSpec};
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString, PyTuple, PyType};

use crate::errors::invalid_argument;

static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The name of `obj`'s type, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// A duration in seconds (`int`, `float` or `datetime.timedelta`); `None` stays `None`.
/// Negative or NaN is a `ValueError`; infinity is "as long as it takes" (a far deadline).
pub fn seconds(what: &str, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    let py = obj.py();
    let secs: f64 = if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds or a datetime.timedelta, not bool"
        )));
    } else if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        obj.extract()?
    } else if obj.is_instance(TIMEDELTA.import(py, "datetime", "timedelta")?)? {
        obj.call_method0(intern!(py, "total_seconds"))?.extract()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds or a datetime.timedelta, not {}",
            type_name(obj)
        )));
    };
    if secs.is_nan() || secs < 0.0 {
        return Err(invalid_argument(
            py,
            format!("{what} must be >= 0 seconds, got {secs}"),
        ));
    }
    Ok(Some(
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
    ))
}

/// A shard key: `bytes` as is, `str` as UTF-8.
pub fn shard_key(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<u8>>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes().to_vec()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(s.to_cow()?.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "shard_key must be str or bytes, not {}",
        type_name(obj)
    )))
}

/// A str argument (peer id, status, strategy name…), `TypeError` otherwise.
pub fn string(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<String> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be a str, not {}",
            type_name(obj)
        ))),
    }
}

/// A bool argument (no truthiness: `TypeError` for anything but `True`/`False`).
pub fn boolean(what: &str, obj: Option<&Bound<'_, PyAny>>, default: bool) -> PyResult<bool> {
    match obj {
        None => Ok(default),
        Some(o) => match o.cast::<PyBool>() {
            Ok(b) => Ok(b.is_true()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "{what} must be a bool, not {}",
                type_name(o)
            ))),
        },
    }
}

/// A non-negative int that fits `u64` (`seed`).
pub fn u64_arg(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            type_name(obj)
        )));
    }
    obj.extract::<u64>().map_err(|_| {
        invalid_argument(
            obj.py(),
            format!("{what} must be between 0 and 2**64-1, got {obj}"),
        )
    })
}

fn weight(id: &str, obj: &Bound<'_, PyAny>) -> PyResult<u32> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "weight of peer {id:?} must be an int, not {}",
            type_name(obj)
        )));
    }
    // 0 passes through so that core reports it like every other invalid peer.
    obj.extract::<u32>().map_err(|_| {
        invalid_argument(
            obj.py(),
            format!("weight of peer {id:?} must be between 1 and 2**32-1, got {obj}"),
        )
    })
}

/// One addition: `"id"`, `("id", weight)` or `{"id": "id", "weight": weight}`.
fn peer_spec(item: &Bound<'_, PyAny>) -> PyResult<PeerSpec> {
    if let Ok(s) = item.cast::<PyString>() {
        return Ok(PeerSpec::new(s.to_cow()?.into_owned()));
    }
    if let Ok(t) = item.cast::<PyTuple>() {
        if t.len() != 2 {
            return Err(PyTypeError::new_err(format!(
                "a peer given as a tuple must be (id, weight), got a tuple of {} items",
                t.len()
            )));
        }
        let id = string("peer id", &t.get_item(0)?)?;
        let w = weight(&id, &t.get_item(1)?)?;
        return Ok(PeerSpec::weighted(id, w));
    }
    if let Ok(d) = item.cast::<PyDict>() {
        for key in d.keys() {
            let ok = key
                .cast::<PyString>()
                .ok()
                .and_then(|k| k.to_cow().ok().map(|k| k == "id" || k == "weight"))
                .unwrap_or(false);
            if !ok {
                return Err(PyTypeError::new_err(format!(
                    "a peer given as a dict has keys \"id\" and \"weight\", not {}",
                    key.repr()?
                )));
            }
        }
        let id = match d.get_item("id")? {
            Some(v) => string("peer id", &v)?,
            None => {
                return Err(PyTypeError::new_err(
                    "a peer given as a dict needs an \"id\" key",
                ))
            }
        };
        let w = match d.get_item("weight")? {
            Some(v) => weight(&id, &v)?,
            None => 1,
        };
        return Ok(PeerSpec::weighted(id, w));
    }
    Err(PyTypeError::new_err(format!(
        "a peer to add must be a str id, an (id, weight) tuple or an {{\"id\", \"weight\"}} dict, not {}",
        type_name(item)
    )))
}

fn items<'py>(what: &str, obj: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a list of peers, not a single {}; write {what}=[{}]",
            type_name(obj),
            obj.repr()?
        )));
    }
    let iter = obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be an iterable of peers, not {}",
            type_name(obj)
        ))
    })?;
    iter.collect()
}

/// `update(add=...)`: an iterable of peer specs.
pub fn additions(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<PeerSpec>> {
    match obj {
        None => Ok(Vec::new()),
        Some(o) if o.is_none() => Ok(Vec::new()),
        Some(o) => items("add", o)?.iter().map(peer_spec).collect(),
    }
}

/// `update(remove=...)`: an iterable of str ids.
pub fn removals(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match obj {
        None => Ok(Vec::new()),
        Some(o) if o.is_none() => Ok(Vec::new()),
        Some(o) => items("remove", o)?
            .iter()
            .map(|i| string("a peer id to remove", i))
            .collect(),
    }
}

/// `"available"`, `"connecting"` or `"unavailable"`.
pub fn status(obj: &Bound<'_, PyAny>) -> PyResult<ConnectionStatus> {
    let s = string("status", obj)?;
    s.parse()
        .map_err(|e: peerlb::Error| crate::errors::to_pyerr(obj.py(), &e))
}

/// `"ok"` (default), `"failure"`, `"declined"` or `"cancelled"`.
#[inline]
pub fn outcome(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Outcome> {
    let Some(obj) = obj else {
        return Ok(Outcome::Ok);
    };
    let py = obj.py();
    // String literals in Python code are interned, so these usually match by identity.
    if obj.is(intern!(py, "ok")) {
        return Ok(Outcome::Ok);
    }
    if obj.is(intern!(py, "failure")) {
        return Ok(Outcome::Failure);
    }
    let s = string("outcome", obj)?;
    s.parse()
        .map_err(|e: peerlb::Error| crate::errors::to_pyerr(py, &e))
}
