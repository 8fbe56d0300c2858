//! Python values → core values, with `TypeError` for wrong types and
//! `peerlb.InvalidArgument` (a `ValueError`) for bad values.
//!
//! Every int and float argument of the package goes through [`uint`], [`number`] or
//! [`seconds`], and every sequence argument through [`each`], so that an int too large
//! for its type is an `InvalidArgument` (never an `OverflowError`), and a sequence is read
//! item by item up to [`MAX_ITEMS`] (never sized by its own `__len__`, which could ask for
//! an allocation that aborts the process).

use std::borrow::Cow;
use std::time::Duration;

use peerlb::{ConnectionStatus, Outcome, PeerSpec};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString, PyTuple, PyType};

use crate::errors::invalid_argument;

static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The most items one sequence argument may have: the core's bound.
pub const MAX_ITEMS: usize = peerlb::MAX_ITEMS_PER_CALL;

/// An optional argument that was given: neither left out nor `None` (core's default
/// applies otherwise).
pub fn given<'a, 'py>(obj: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    obj.filter(|o| !o.is_none())
}

/// The name of `obj`'s type, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// `str(obj)` for a message, without failing (Python refuses to print ints of more than
/// 4300 digits) and cut short when long.
fn shown(obj: &Bound<'_, PyAny>) -> String {
    match obj.str() {
        Ok(s) => {
            let s = s.to_string();
            let length = s.chars().count();
            if length > 40 {
                let start: String = s.chars().take(20).collect();
                format!("{start}... ({length} characters)")
            } else {
                s
            }
        }
        Err(_) => format!("a {} too large to print", type_name(obj)),
    }
}

/// An int in `min..=max` (`TypeError` for a non-int or a bool, `InvalidArgument` out of
/// range, however large).
pub fn uint(what: &str, obj: &Bound<'_, PyAny>, min: u64, max: u64) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            type_name(obj)
        )));
    }
    match obj.extract::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(invalid_argument(
            obj.py(),
            format!("{what} must be between {min} and {max}, got {}", shown(obj)),
        )),
    }
}

/// An int that fits `i64` (`TypeError` for a non-int or a bool, `InvalidArgument` out of
/// range, however large).
pub fn i64_arg(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            type_name(obj)
        )));
    }
    obj.extract::<i64>().map_err(|_| {
        invalid_argument(
            obj.py(),
            format!(
                "{what} must be between {} and {}, got {}",
                i64::MIN,
                i64::MAX,
                shown(obj)
            ),
        )
    })
}

/// An int that fits `u32`, at least `min`.
pub fn u32_arg(what: &str, obj: &Bound<'_, PyAny>, min: u32) -> PyResult<u32> {
    // In range by construction.
    uint(what, obj, min.into(), u32::MAX.into()).map(|v| v as u32)
}

/// A non-negative int that fits `u64` (`seed`).
pub fn u64_arg(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    uint(what, obj, 0, u64::MAX)
}

/// A real number: an `int`, a `float`, or an object with `__float__` (not a bool). An int
/// too large for a float is `InvalidArgument`; NaN and infinities pass (core judges them).
/// A `__float__` that raises is a `TypeError` whose cause is its exception.
pub fn number(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    let py = obj.py();
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number, not bool"
        )));
    }
    match obj.extract::<f64>() {
        Ok(v) => Ok(v),
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => Err(invalid_argument(
            py,
            format!(
                "{what} must be a number a float can hold, got {}",
                shown(obj)
            ),
        )),
        Err(e) if e.is_instance_of::<PyTypeError>(py) => Err(PyTypeError::new_err(format!(
            "{what} must be a number, not {}",
            type_name(obj)
        ))),
        // The object's own `__float__` raised: a TypeError naming the argument, with the
        // object's exception as its cause.
        Err(e) => {
            let err = PyTypeError::new_err(format!(
                "{what} must be a number; converting the {} raised {}",
                type_name(obj),
                e.get_type(py)
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "an exception".into())
            ));
            err.set_cause(py, Some(e));
            Err(err)
        }
    }
}

/// A duration in seconds (`int`, `float` or `datetime.timedelta`); `None` stays `None`.
/// Negative or NaN is a `ValueError`, and so is an int too large for a float; infinity is
/// "as long as it takes" (a far deadline).
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
        if obj.lt(0)? {
            return Err(invalid_argument(
                py,
                format!("{what} must be >= 0 seconds, got {}", shown(obj)),
            ));
        }
        number(what, obj)?
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
        return Ok(Some(text("shard_key", s)?.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "shard_key must be str or bytes, not {}",
        type_name(obj)
    )))
}

/// A count limit (`max_pending=`): an int in the range of `usize`, passed to core as
/// given (0 included: core judges it).
pub fn usize_limit(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    // In range by construction.
    uint(what, obj, 0, usize::MAX as u64).map(|v| v as usize)
}

/// The text of a str. A str that has no UTF-8 form (a lone surrogate, e.g. `"\ud800"`)
/// is a bad value: `InvalidArgument`, like an id that is not valid UTF-8 on the other
/// surfaces (not the `UnicodeEncodeError` Python's encoder raises).
pub fn text<'a>(what: &str, s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    s.to_cow().map_err(|_| {
        invalid_argument(
            s.py(),
            format!("{what} is not valid Unicode text (it has a lone surrogate)"),
        )
    })
}

/// A path argument (str, bytes or `os.PathLike`, as Python's `open` takes). A str the
/// file system cannot name (a lone surrogate) is `InvalidArgument`, like [`text`].
pub fn path(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<std::path::PathBuf> {
    obj.extract::<std::path::PathBuf>().map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyUnicodeError>(obj.py()) {
            invalid_argument(
                obj.py(),
                format!("{what} is not a path the file system can name: {e}"),
            )
        } else {
            e
        }
    })
}

/// A str argument (peer id, status, strategy name…), `TypeError` otherwise.
pub fn string(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<String> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(text(what, s)?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be a str, not {}",
            type_name(obj)
        ))),
    }
}

/// A bool argument (no truthiness: `TypeError` for anything but `True`/`False`).
pub fn boolean(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    match obj.cast::<PyBool>() {
        Ok(b) => Ok(b.is_true()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be a bool, not {}",
            type_name(obj)
        ))),
    }
}

/// Converts every item of the iterable `obj` with `convert`, reading it item by item
/// (its `__len__` and `__length_hint__` are never asked), at most [`MAX_ITEMS`] items. A
/// single `str` or `bytes` is a `TypeError` (`what=["x"]` was meant).
pub fn each<'py, T>(
    what: &str,
    obj: &Bound<'py, PyAny>,
    mut convert: impl FnMut(&Bound<'py, PyAny>) -> PyResult<T>,
) -> PyResult<Vec<T>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an iterable, not a single {}; write {what}=[{}]",
            type_name(obj),
            obj.repr()?
        )));
    }
    let iter = obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be an iterable, not {}",
            type_name(obj)
        ))
    })?;
    let mut out = Vec::new();
    // A `for` loop only calls `next()`; `collect()` would size the vector by
    // `__length_hint__`.
    for item in iter {
        if out.len() == MAX_ITEMS {
            return Err(invalid_argument(
                obj.py(),
                format!("{what} has more than {MAX_ITEMS} items"),
            ));
        }
        out.push(convert(&item?)?);
    }
    Ok(out)
}

/// An iterable of str (`TypeError` for another item type).
pub fn strings(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    each(what, obj, |item| {
        string(&format!("an item of {what}"), item)
    })
}

/// The weight of a peer: any int that fits `u32` (0 included: core judges it, like every
/// other peer it cannot add, in the update's error list).
fn weight(id: &str, obj: &Bound<'_, PyAny>) -> PyResult<u32> {
    u32_arg(&format!("weight of peer {id:?}"), obj, 0)
}

/// The keys a peer given as a dict may have.
const PEER_KEYS: [&str; 4] = ["id", "weight", "zone", "priority"];

/// One addition: `"id"`, `("id", weight)` or `{"id": "id", "weight": weight, "zone": "z",
/// "priority": 1}` (every key but `id` optional; a zone of `None` is no zone).
fn peer_spec(item: &Bound<'_, PyAny>) -> PyResult<PeerSpec> {
    if let Ok(s) = item.cast::<PyString>() {
        return Ok(PeerSpec::new(text("peer id", s)?.into_owned()));
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
                .and_then(|k| k.to_cow().ok().map(|k| PEER_KEYS.contains(&k.as_ref())))
                .unwrap_or(false);
            if !ok {
                return Err(PyTypeError::new_err(format!(
                    "a peer given as a dict has keys \"id\", \"weight\", \"zone\" and \"priority\", not {}",
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
        let mut spec = match d.get_item("weight")? {
            Some(v) => PeerSpec::weighted(id.clone(), weight(&id, &v)?),
            None => PeerSpec::new(id.clone()),
        };
        if let Some(z) = d.get_item("zone")?.filter(|z| !z.is_none()) {
            let zone = string(&format!("zone of peer {id:?}"), &z)?;
            // As given: the core refuses an over-long zone or one with a NUL.
            spec.zone = (!zone.is_empty()).then_some(zone);
        }
        if let Some(p) = d.get_item("priority")? {
            spec.priority = u32_arg(&format!("priority of peer {id:?}"), &p, 0)?;
        }
        return Ok(spec);
    }
    Err(PyTypeError::new_err(format!(
        "a peer to add must be a str id, an (id, weight) tuple or an {{\"id\", \"weight\", \"zone\", \"priority\"}} dict, not {}",
        type_name(item)
    )))
}

/// `update(add=...)` and `StaticUpdater(peers)`: an iterable of peer specs.
pub fn additions(what: &str, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<PeerSpec>> {
    match obj {
        Some(o) if !o.is_none() => each(what, o, peer_spec),
        _ => Ok(Vec::new()),
    }
}

/// `update(remove=...)`: an iterable of str ids.
pub fn removals(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match obj {
        Some(o) if !o.is_none() => each("remove", o, |i| string("a peer id to remove", i)),
        _ => Ok(Vec::new()),
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
