//! `peerlb.Upstream`: the score-based list (core `peerlb::Upstream`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use peerlb::{HealthCheck, Upstream, UpstreamOptions};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

use crate::convert;
use crate::errors::{check, invalid_argument};

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

/// Registers the `atexit` hook (module init).
pub fn register_atexit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(_upstream_atexit, m)?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

fn backend_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "backends must be an iterable of str, not a str",
        ));
    }
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let s = convert::string("a backend", &item)?;
        if s.is_empty() || s.len() > peerlb::MAX_PEER_ID_LEN || s.contains('\0') {
            return Err(invalid_argument(
                obj.py(),
                format!("backend {s:?} must be 1..=1024 bytes without NUL"),
            ));
        }
        out.push(s);
    }
    Ok(out)
}

fn number(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number, not bool"
        )));
    }
    obj.extract::<f64>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a number, not {}",
            convert::type_name(obj)
        ))
    })
}

#[pymethods]
impl PyUpstream {
    #[new]
    #[pyo3(
        signature = (backends=None, *, check=None, interval=None, timeout=None, initial_score=None, low_score=None, high_score=None, fail_delta=None, success_delta=None, manual=false),
        text_signature = "(backends=(), *, check='tcp-probe', interval=1.0, timeout=0.1, initial_score=1.0, low_score=-3.0, high_score=3.0, fail_delta=-1.0, success_delta=1.0, manual=False)"
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
                *slot = number(what, a)?;
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
            Some(c) if c.is_callable() => {
                let cb: Py<PyAny> = c.clone().unbind();
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
            Some(c) => {
                return Err(PyTypeError::new_err(format!(
                    "check must be \"tcp-probe\" or a callable taking the backend, not {}",
                    convert::type_name(c)
                )))
            }
        };
        let inner = crate::errors::check(py, Upstream::new(ids, hc, o))?;
        Ok(PyUpstream { inner })
    }

    /// The next backend with a score >= 0 (round-robin); `NoPeerAvailable` when none.
    fn pick(&self, py: Python<'_>) -> PyResult<String> {
        check(py, self.inner.pick())
    }

    /// Moves the backend's score up by the success delta (capped at the high score).
    fn up(&self, backend: &str) {
        self.inner.up(backend)
    }

    /// Moves the backend's score down by the fail delta (capped at the low score).
    fn down(&self, backend: &str) {
        self.inner.down(backend)
    }

    /// Replaces the backends; those that stay keep their score.
    fn reconcile(&self, backends: &Bound<'_, PyAny>) -> PyResult<()> {
        let ids = backend_list(backends)?;
        self.inner.reconcile(ids);
        Ok(())
    }

    /// The backend's score, or None when it is not in the list.
    fn score(&self, backend: &str) -> Option<f64> {
        self.inner.score(backend)
    }

    /// Every backend with its score, in list order.
    fn scores<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (b, s) in self.inner.scores() {
            if !d.contains(&b)? {
                d.set_item(b, s)?;
            }
        }
        Ok(d)
    }

    /// The backends, in list order.
    #[getter]
    fn backends(&self) -> Vec<String> {
        self.inner.backends()
    }

    /// Runs one health-check round now (the GIL is released meanwhile) and returns when
    /// every check ended or timed out. Do not call it from inside a check.
    fn check_now(&self, py: Python<'_>) {
        py.detach(|| self.inner.check_now())
    }

    /// Stops the health checks. `pick`/`up`/`down`/`reconcile` keep working.
    fn shutdown(&self) {
        self.inner.shutdown()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.inner.shutdown();
        false
    }

    fn __repr__(&self) -> String {
        format!("Upstream({:?})", self.inner.scores())
    }
}
