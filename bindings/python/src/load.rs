//! `peerlb.LoadReport`: what a backend reported about its load, for
//! `Choice.finish(load=...)`. Parsing and validation are the core's (`peerlb::LoadReport`).

use peerlb::LoadReport;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyMapping, PyString, PyType};

use crate::convert::{self, given, type_name};
use crate::errors::{guard, to_pyerr};

/// A backend's load report (`peerlb.LoadReport`): requests in flight, utilization, queries
/// and errors per second, each optional. Immutable.
#[pyclass(module = "peerlb._peerlb", name = "LoadReport", frozen, eq)]
#[derive(PartialEq)]
pub struct PyLoadReport {
    pub(crate) report: LoadReport,
}

/// The in-flight count: an int, or a float holding a whole number (core judges the range).
fn in_flight(obj: &Bound<'_, PyAny>) -> PyResult<u32> {
    let what = "requests_in_flight";
    if obj.is_instance_of::<pyo3::types::PyInt>() && !obj.is_instance_of::<pyo3::types::PyBool>() {
        return convert::u32_arg(what, obj, 0);
    }
    let value = convert::number(what, obj)?;
    LoadReport::in_flight_from_f64(value).map_err(|e| to_pyerr(obj.py(), &e))
}

/// A report from its four optional fields; core checks the numbers.
fn from_fields(
    py: Python<'_>,
    requests_in_flight: Option<&Bound<'_, PyAny>>,
    utilization: Option<&Bound<'_, PyAny>>,
    qps: Option<&Bound<'_, PyAny>>,
    eps: Option<&Bound<'_, PyAny>>,
) -> PyResult<LoadReport> {
    let number = |what: &str, obj: Option<&Bound<'_, PyAny>>| -> PyResult<Option<f64>> {
        given(obj).map(|o| convert::number(what, o)).transpose()
    };
    let report = LoadReport {
        requests_in_flight: given(requests_in_flight).map(in_flight).transpose()?,
        utilization: number("utilization", utilization)?,
        qps: number("qps", qps)?,
        eps: number("eps", eps)?,
    };
    report.validate().map_err(|e| to_pyerr(py, &e))?;
    Ok(report)
}

/// `Choice.finish`'s `load`: `None`, a `LoadReport`, ORCA text (`str`) or a mapping of
/// the four fields.
pub(crate) fn load_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<LoadReport>> {
    let Some(obj) = given(obj) else {
        return Ok(None);
    };
    let py = obj.py();
    if let Ok(r) = obj.cast::<PyLoadReport>() {
        return Ok(Some(r.get().report));
    }
    if let Ok(text) = obj.cast::<PyString>() {
        let text = text.to_cow()?;
        return LoadReport::from_orca(&text)
            .map(Some)
            .map_err(|e| to_pyerr(py, &e));
    }
    if let Ok(map) = obj.cast::<PyMapping>() {
        let mut fields: [Option<Bound<'_, PyAny>>; 4] = Default::default();
        const KEYS: [&str; 4] = ["requests_in_flight", "utilization", "qps", "eps"];
        for item in map.items()?.iter() {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            let key = convert::string("a key of load", &key)?;
            let Some(i) = KEYS.iter().position(|k| *k == key) else {
                return Err(to_pyerr(
                    py,
                    &peerlb::Error::InvalidArgument(format!(
                        "load has no field {key:?}; expected {}",
                        KEYS.join(", ")
                    )),
                ));
            };
            fields[i] = Some(value);
        }
        let [a, b, c, d] = &fields;
        return from_fields(py, a.as_ref(), b.as_ref(), c.as_ref(), d.as_ref()).map(Some);
    }
    Err(PyTypeError::new_err(format!(
        "load must be a peerlb.LoadReport, ORCA text (str) or a mapping, not {}",
        type_name(obj)
    )))
}

#[pymethods]
impl PyLoadReport {
    /// `LoadReport(requests_in_flight=None, utilization=None, qps=None, eps=None)`; a
    /// negative, NaN or infinite number, or a fractional in-flight count, is
    /// `InvalidArgument`.
    #[new]
    #[pyo3(signature = (requests_in_flight=None, utilization=None, qps=None, eps=None))]
    fn new(
        py: Python<'_>,
        requests_in_flight: Option<&Bound<'_, PyAny>>,
        utilization: Option<&Bound<'_, PyAny>>,
        qps: Option<&Bound<'_, PyAny>>,
        eps: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyLoadReport> {
        guard(py, || {
            from_fields(py, requests_in_flight, utilization, qps, eps)
                .map(|report| PyLoadReport { report })
        })
    }

    /// Parses the value of an `endpoint-load-metrics` header in ORCA's text form
    /// (`"TEXT cpu_utilization=0.3, rps_fractional=120, eps=1.5, named_metrics.rif=7"`).
    #[classmethod]
    fn from_orca(_cls: &Bound<'_, PyType>, text: &Bound<'_, PyAny>) -> PyResult<PyLoadReport> {
        let py = text.py();
        guard(py, || {
            let text = convert::string("text", text)?;
            LoadReport::from_orca(&text)
                .map(|report| PyLoadReport { report })
                .map_err(|e| to_pyerr(py, &e))
        })
    }

    /// Requests the backend had in flight (from every client), or `None`.
    #[getter]
    fn requests_in_flight(&self) -> Option<u32> {
        self.report.requests_in_flight
    }

    /// Its utilization (a fraction of its capacity), or `None`.
    #[getter]
    fn utilization(&self) -> Option<f64> {
        self.report.utilization
    }

    /// Queries per second it serves, or `None`.
    #[getter]
    fn qps(&self) -> Option<f64> {
        self.report.qps
    }

    /// Errors per second it returns, or `None`.
    #[getter]
    fn eps(&self) -> Option<f64> {
        self.report.eps
    }

    /// The ORCA text form (`str(report)`), which `from_orca` reads back.
    fn __str__(&self) -> String {
        self.report.to_string()
    }

    fn __repr__(&self) -> String {
        let show = |v: Option<String>| v.unwrap_or_else(|| "None".into());
        format!(
            "peerlb.LoadReport(requests_in_flight={}, utilization={}, qps={}, eps={})",
            show(self.report.requests_in_flight.map(|v| v.to_string())),
            show(self.report.utilization.map(|v| format!("{v:?}"))),
            show(self.report.qps.map(|v| format!("{v:?}"))),
            show(self.report.eps.map(|v| format!("{v:?}"))),
        )
    }
}
