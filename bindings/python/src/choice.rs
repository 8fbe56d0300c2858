//! `peerlb.Choice`: a chosen peer whose request is pending until finished.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use peerlb::{Outcome, PeerId};
use pyo3::exceptions::{PyBaseException, PyException};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use crate::convert;
use crate::errors::{already_finished, guard};

/// Nanoseconds since this base (+1, so 0 means "not set"), for `Choice`'s `with` timing.
fn clock_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// A chosen peer (`peerlb.Choice`); the request is pending until `finish`.
///
/// Holds core's choice as an opaque token in an atomic pointer, so finishing is one atomic
/// swap and happens exactly once, from any thread.
#[pyclass(module = "peerlb._peerlb", name = "Choice", frozen)]
pub struct PyChoice {
    token: AtomicPtr<()>,
    peer: PeerId,
    entered: AtomicU64,
}

impl PyChoice {
    pub(crate) fn from_core(choice: peerlb::Choice) -> PyChoice {
        let peer = choice.peer().clone();
        PyChoice {
            token: AtomicPtr::new(choice.into_raw() as *mut ()),
            peer,
            entered: AtomicU64::new(0),
        }
    }

    /// Takes the core choice out (once).
    #[inline]
    pub(crate) fn take(&self) -> Option<peerlb::Choice> {
        let token = self.token.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if token.is_null() {
            None
        } else {
            // SAFETY: the token came from `Choice::into_raw` in `from_core`, and the swap
            // hands it out exactly once.
            Some(unsafe { peerlb::Choice::from_raw(token as *const ()) })
        }
    }

    /// The chosen peer's id.
    pub(crate) fn peer_id(&self) -> &str {
        self.peer.as_str()
    }

    /// Ends the request as cancelled if it is still pending.
    pub(crate) fn release(&self) {
        if let Some(c) = self.take() {
            c.finish(Outcome::Cancelled, None);
        }
    }
}

impl Drop for PyChoice {
    fn drop(&mut self) {
        // Dropping core's choice unfinished counts as cancelled.
        drop(self.take());
    }
}

#[pymethods]
impl PyChoice {
    /// The chosen peer's id.
    #[getter]
    fn peer<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.peer.as_str())
    }

    /// Whether the request has been finished (or cancelled).
    #[getter]
    fn finished(&self) -> bool {
        self.token.load(Ordering::Acquire).is_null()
    }

    /// Ends the request with `outcome` (`"ok"`, `"failure"`, `"declined"`, `"cancelled"`),
    /// optional `latency` (seconds or timedelta) and optional `load`, the backend's load
    /// report (a `LoadReport`, ORCA text as in its `endpoint-load-metrics` header, or a
    /// mapping of `requests_in_flight`, `utilization`, `qps`, `eps`). Raises
    /// `AlreadyFinished` (also a `RuntimeError`) if the choice was already finished; bad
    /// arguments raise and leave it pending.
    #[pyo3(
        signature = (outcome=None, latency=None, load=None),
        text_signature = "($self, outcome='ok', latency=None, load=None)"
    )]
    fn finish(
        &self,
        py: Python<'_>,
        outcome: Option<&Bound<'_, PyAny>>,
        latency: Option<&Bound<'_, PyAny>>,
        load: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        guard(py, || {
            let outcome = convert::outcome(outcome)?;
            let latency = if latency.is_some() {
                convert::seconds("latency", latency)?
            } else {
                None
            };
            let load = if load.is_some() {
                crate::load::load_arg(load)?
            } else {
                None
            };
            match self.take() {
                Some(c) => {
                    c.finish_with_load(outcome, latency, load.as_ref());
                    Ok(())
                }
                None => Err(already_finished(py, self.peer.as_str())),
            }
        })
    }

    /// Abandons the request: finishes it as `"cancelled"` if still pending (no error if
    /// it was already finished). What `del choice` does too.
    fn cancel(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || {
            self.release();
            Ok(())
        })
    }

    /// The same as `cancel()` (its older name).
    #[pyo3(name = "release")]
    fn py_release(&self, py: Python<'_>) -> PyResult<()> {
        self.cancel(py)
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        let nanos = clock_base().elapsed().as_nanos() as u64 + 1;
        slf.get().entered.store(nanos, Ordering::Relaxed);
        slf.clone()
    }

    /// Finishes the request if the block did not: `"ok"` on a normal exit, `"failure"` on
    /// an `Exception`, `"cancelled"` on other `BaseException`s (KeyboardInterrupt,
    /// asyncio.CancelledError), with the time spent in the block as latency.
    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        guard(py, || {
            let Some(choice) = self.take() else {
                return Ok(false);
            };
            let outcome = match exc_type {
                None => Outcome::Ok,
                Some(t) => {
                    let t = t.cast::<PyType>()?;
                    if t.is_subclass_of::<PyException>()? {
                        Outcome::Failure
                    } else if t.is_subclass_of::<PyBaseException>()? {
                        Outcome::Cancelled
                    } else {
                        Outcome::Failure
                    }
                }
            };
            let entered = self.entered.load(Ordering::Relaxed);
            let latency = (entered > 0).then(|| {
                let now = clock_base().elapsed();
                now.saturating_sub(Duration::from_nanos(entered - 1))
            });
            choice.finish(outcome, latency);
            Ok(false)
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "<peerlb.Choice peer={:?} {}>",
            self.peer.as_str(),
            if self.finished() {
                "finished"
            } else {
                "pending"
            }
        )
    }
}
