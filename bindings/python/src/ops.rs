//! `peerlb.serve_admin` / `peerlb.AdminServer` (core's admin endpoint) and
//! `peerlb.metrics()` (every list's metrics, from core's process-wide registry).

use peerlb::admin_http::{serve_admin_with, AdminOptions, AdminServer};
use pyo3::prelude::*;

use crate::convert;
use crate::errors::{check, guard};

/// A running admin endpoint (`peerlb.AdminServer`); a context manager that stops it.
#[pyclass(module = "peerlb._peerlb", name = "AdminServer", frozen)]
pub struct PyAdminServer {
    inner: AdminServer,
}

#[pymethods]
impl PyAdminServer {
    /// The base URL, e.g. `http://127.0.0.1:9901`.
    #[getter]
    fn url(&self) -> String {
        self.inner.url()
    }

    /// The port it listens on (the one the system chose for port 0).
    #[getter]
    fn port(&self) -> u16 {
        self.inner.local_addr().port()
    }

    /// `host:port` it listens on.
    #[getter]
    fn address(&self) -> String {
        self.inner.local_addr().to_string()
    }

    /// Stops it: the port closes and open connections end. Stopping twice does nothing.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || {
            py.detach(|| self.inner.stop());
            Ok(())
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Stops it.
    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("AdminServer({:?})", self.inner.url())
    }
}

/// Serves the admin endpoint (see the README): `address` is `"host:port"`, `"[v6]:port"`
/// or a bare port (`"9901"`, `":0"`) on 127.0.0.1, default `127.0.0.1:9901`; with `token`,
/// every request needs `Authorization: Bearer <token>`.
#[pyfunction]
#[pyo3(signature = (address=None, *, token=None))]
pub fn serve_admin(
    py: Python<'_>,
    address: Option<&Bound<'_, PyAny>>,
    token: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyAdminServer> {
    guard(py, || {
        let options = AdminOptions {
            address: convert::given(address)
                .map(|a| convert::string("address", a))
                .transpose()?,
            token: convert::given(token)
                .map(|t| convert::string("token", t))
                .transpose()?,
        };
        let inner = check(py, py.detach(|| serve_admin_with(options)))?;
        Ok(PyAdminServer { inner })
    })
}

/// Every live list's metrics in the Prometheus text format (a list that shares its name
/// with a newer live list is left out); what the admin endpoint's `/metrics` serves.
#[pyfunction]
pub fn metrics(py: Python<'_>) -> PyResult<String> {
    guard(py, || Ok(py.detach(peerlb::metrics::gather)))
}
