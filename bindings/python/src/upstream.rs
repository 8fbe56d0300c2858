//! `peerlb.Upstream`: the score-based list (core `peerlb::Upstream`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use peerlb::{HealthCheck, Upstream, UpstreamOptions};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

use crate::convert;
use crate::errors::{check, guard, invalid_argument};

/// A list of backends, each with a score that health checks and `up`/`down` move;
/// `pick()` round-robins over the backends with a score >= 0.
#[pyclass(module = "peerlb._peerlb", name = "Upstream", frozen)]
pub struct PyUpstream {
    inner: Upstream,
}

/// Set by an `atexit` hook: no Python check starts once the interpreter is exiting.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Python checks running right now (on library threads).
static IN_CALL: AtomicUsize = AtomicUsize::new(0);

/// Marks one Python call from a library thread (an Upstream check, an event subscriber)
/// as running; refused once the interpreter is exiting (calling into a finalizing
/// interpreter from a foreign thread aborts the process).
pub(crate) struct PyCall;

impl PyCall {
    pub(crate) fn enter() -> Result<PyCall, String> {
        if EXITING.load(Ordering::SeqCst) {
            return Err("the Python interpreter is exiting".into());
        }
        IN_CALL.fetch_add(1, Ordering::SeqCst);
        if EXITING.load(Ordering::SeqCst) {
            IN_CALL.fetch_sub(1, Ordering::SeqCst);
            return Err("the Python interpreter is exiting".into());
        }
        Ok(PyCall)
    }
}

impl Drop for PyCall {
    fn drop(&mut self) {
        IN_CALL.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The `atexit` hook: stop starting Python checks, then wait (GIL released, up to 5 s) for
/// those running to return.
#[pyfunction]
fn _upstream_atexit(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let t0 = Instant::now();
        while IN_CALL.load(Ordering::SeqCst) > 0 && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// A Python callable as a health check: run on a library thread with the GIL; raising or
/// returning `False` is a failed check.
fn python_check(cb: Py<PyAny>) -> HealthCheck {
    HealthCheck::blocking(move |backend| {
        let _call = PyCall::enter()?;
        Python::attach(|py| match cb.call1(py, (backend,)) {
            Ok(r)
                if r.bind(py).is_instance_of::<PyBool>()
                    && !r.extract::<bool>(py).unwrap_or(true) =>
            {
                Err("check returned False".to_owned())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        })
    })
}

/// Registers the `atexit` hook (module init).
pub fn register_atexit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(_upstream_atexit, m)?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

/// The backends: an iterable of peer ids (core's rule: 1..=1024 bytes, no NUL).
fn backend_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    convert::each("backends", obj, |item| convert::string("a backend", item))
}

#[pymethods]
impl PyUpstream {
    #[new]
    #[pyo3(
        signature = (backends=None, *, check=None, interval=None, timeout=None, initial_score=None, low_score=None, high_score=None, fail_delta=None, success_delta=None, manual=false),
        text_signature = "(backends=(), *, check=None, interval=None, timeout=None, initial_score=None, low_score=None, high_score=None, fail_delta=None, success_delta=None, manual=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        backends: Option<&Bound<'_, PyAny>>,
        check: Option<&Bound<'_, PyAny>>,
        interval: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        initial_score: Option<&Bound<'_, PyAny>>,
        low_score: Option<&Bound<'_, PyAny>>,
        high_score: Option<&Bound<'_, PyAny>>,
        fail_delta: Option<&Bound<'_, PyAny>>,
        success_delta: Option<&Bound<'_, PyAny>>,
        manual: bool,
    ) -> PyResult<Self> {
        guard(py, || {
            let ids = match backends {
                Some(b) if !b.is_none() => backend_list(b)?,
                _ => Vec::new(),
            };
            let mut o = UpstreamOptions::default();
            if let Some(i) = convert::seconds("interval", interval)? {
                o.health_check_interval = Some(i);
            }
            if manual {
                o = o.manual();
            }
            if let Some(t) = convert::seconds("timeout", timeout)? {
                o.health_check_timeout = t;
            }
            for (what, arg, slot) in [
                ("initial_score", initial_score, &mut o.initial_score),
                ("low_score", low_score, &mut o.low_score),
                ("high_score", high_score, &mut o.high_score),
                ("fail_delta", fail_delta, &mut o.fail_delta),
                ("success_delta", success_delta, &mut o.success_delta),
            ] {
                if let Some(a) = arg.filter(|a| !a.is_none()) {
                    *slot = convert::number(what, a)?;
                }
            }
            let hc = match check {
                None => HealthCheck::TcpProbe,
                Some(c) if c.is_none() => HealthCheck::TcpProbe,
                Some(c) if c.is_instance_of::<PyString>() => {
                    let s = convert::string("check", c)?;
                    if s != "tcp-probe" {
                        return Err(invalid_argument(
                            py,
                            format!("unknown check {s:?}; pass \"tcp-probe\" or a callable"),
                        ));
                    }
                    HealthCheck::TcpProbe
                }
                Some(c) if c.is_callable() => python_check(c.clone().unbind()),
                Some(c) => {
                    return Err(PyTypeError::new_err(format!(
                        "check must be \"tcp-probe\" or a callable taking the backend, not {}",
                        convert::type_name(c)
                    )))
                }
            };
            let inner = crate::errors::check(py, py.detach(|| Upstream::new(ids, hc, o)))?;
            Ok(PyUpstream { inner })
        })
    }

    /// The next backend with a score >= 0 (round-robin); `NoPeerAvailable` when none.
    fn pick(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || check(py, self.inner.pick()))
    }

    /// Moves the backend's score up by the success delta (capped at the high score).
    fn up(&self, py: Python<'_>, backend: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(py, || {
            self.inner.up(&convert::string("backend", backend)?);
            Ok(())
        })
    }

    /// Moves the backend's score down by the fail delta (capped at the low score).
    fn down(&self, py: Python<'_>, backend: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(py, || {
            self.inner.down(&convert::string("backend", backend)?);
            Ok(())
        })
    }

    /// Replaces the backends; those that stay keep their score (GIL released meanwhile).
    fn reconcile(&self, py: Python<'_>, backends: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(py, || {
            let ids = backend_list(backends)?;
            check(py, py.detach(|| self.inner.reconcile(ids)))
        })
    }

    /// The backend's score, or None when it is not in the list.
    fn score(&self, py: Python<'_>, backend: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        guard(py, || {
            Ok(self.inner.score(&convert::string("backend", backend)?))
        })
    }

    /// Every backend with its score, in list order.
    fn scores<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guard(py, || {
            let scores = py.detach(|| self.inner.scores());
            let d = PyDict::new(py);
            for (b, s) in scores {
                if !d.contains(&b)? {
                    d.set_item(b, s)?;
                }
            }
            Ok(d)
        })
    }

    /// The backends, in list order.
    #[getter]
    fn backends(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        guard(py, || Ok(py.detach(|| self.inner.backends())))
    }

    /// Runs one health-check round now (the GIL is released meanwhile) and returns when
    /// every check ended or timed out. Do not call it from inside a check.
    fn check_now(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || {
            py.detach(|| self.inner.check_now());
            Ok(())
        })
    }

    /// Stops the health checks. `pick`/`up`/`down`/`reconcile` keep working.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || {
            self.inner.shutdown();
            Ok(())
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.shutdown(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || Ok(format!("Upstream({:?})", self.inner.scores())))
    }
}
