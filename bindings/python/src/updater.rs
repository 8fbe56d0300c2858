//! Updaters (`peerlb.StaticUpdater`, `peerlb.FileUpdater`, `peerlb.DnsUpdater`) and the
//! `peerlb.Binding` lifecycle their `bind(list)` returns. Thin wrappers over
//! `peerlb::updater`; documented for Python users in `_peerlb.pyi`.

use std::net::SocketAddr;

use peerlb::updater::{Binding, DnsRecord, DnsUpdater, FileUpdater, StaticUpdater};
use peerlb::Error;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert;
use crate::errors::{check, guard, invalid_argument, to_pyerr};
use crate::PyPeerList;

/// A fixed set of peers, applied when the binding starts.
#[pyclass(module = "peerlb._peerlb", name = "StaticUpdater", frozen)]
pub struct PyStaticUpdater(StaticUpdater);

#[pymethods]
impl PyStaticUpdater {
    #[new]
    fn new(py: Python<'_>, peers: &Bound<'_, PyAny>) -> PyResult<Self> {
        guard(py, || {
            let peers = convert::additions("peers", Some(peers))?;
            Ok(PyStaticUpdater(StaticUpdater::new(peers)))
        })
    }

    /// Ties the set to `list`; returns a `Binding` (not started).
    fn bind(&self, py: Python<'_>, list: PyRef<'_, PyPeerList>) -> PyResult<PyBinding> {
        guard(py, || Ok(PyBinding(self.0.bind(&list.inner))))
    }
}

/// Follows a file of `host:port [weight] [zone=Z] [priority=P]` lines, polled for changes.
#[pyclass(module = "peerlb._peerlb", name = "FileUpdater", frozen)]
pub struct PyFileUpdater(FileUpdater);

#[pymethods]
impl PyFileUpdater {
    #[new]
    #[pyo3(signature = (path, *, poll_interval=None, max_size=None))]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        poll_interval: Option<&Bound<'_, PyAny>>,
        max_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        guard(py, || {
            let mut u = FileUpdater::new(convert::path("path", path)?);
            if let Some(d) = convert::seconds("poll_interval", poll_interval)? {
                u = u.poll_interval(d);
            }
            if let Some(n) = max_size.filter(|n| !n.is_none()) {
                u = u.max_size(convert::u64_arg("max_size", n)?);
            }
            Ok(PyFileUpdater(u))
        })
    }

    /// Ties the file to `list`; returns a `Binding` (not started).
    fn bind(&self, py: Python<'_>, list: PyRef<'_, PyPeerList>) -> PyResult<PyBinding> {
        guard(py, || Ok(PyBinding(self.0.bind(&list.inner))))
    }
}

/// Follows a DNS name: A/AAAA records + a port, or SRV records, polled.
#[pyclass(module = "peerlb._peerlb", name = "DnsUpdater", frozen)]
pub struct PyDnsUpdater(DnsUpdater);

#[pymethods]
impl PyDnsUpdater {
    #[new]
    #[pyo3(signature = (name, record=None, *, port=None, nameserver=None, min_interval=None,
                        max_interval=None, timeout=None, empty_threshold=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        record: Option<&Bound<'_, PyAny>>,
        port: Option<&Bound<'_, PyAny>>,
        nameserver: Option<&Bound<'_, PyAny>>,
        min_interval: Option<&Bound<'_, PyAny>>,
        max_interval: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        empty_threshold: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        guard(py, || {
            let name = convert::string("name", name)?;
            let nameserver = nameserver
                .map(|n| convert::string("nameserver", n))
                .transpose()?;
            let record = record.map(|r| convert::string("record", r)).transpose()?;
            let port = port
                .map(|p| convert::uint("port", p, 0, u16::MAX.into()).map(|p| p as u16))
                .transpose()?;
            let record = check(py, DnsRecord::from_name(record.as_deref(), port))?;
            let mut u = check(py, DnsUpdater::new(&name, record))?;
            if let Some(n) = empty_threshold {
                u = u.empty_threshold(convert::u32_arg("empty_threshold", n, 0)?);
            }
            if let Some(ns) = nameserver {
                let addr: SocketAddr = ns.parse().map_err(|_| {
                    invalid_argument(py, format!("nameserver must be ip:port, not {ns:?}"))
                })?;
                u = u.nameserver(addr);
            }
            if let Some(d) = convert::seconds("min_interval", min_interval)? {
                u = u.min_interval(d);
            }
            if let Some(d) = convert::seconds("max_interval", max_interval)? {
                u = u.max_interval(d);
            }
            if let Some(d) = convert::seconds("timeout", timeout)? {
                u = u.timeout(d);
            }
            Ok(PyDnsUpdater(u))
        })
    }

    /// Ties the name to `list`; returns a `Binding` (not started).
    fn bind(&self, py: Python<'_>, list: PyRef<'_, PyPeerList>) -> PyResult<PyBinding> {
        guard(py, || Ok(PyBinding(self.0.bind(&list.inner))))
    }
}

/// Watches a key prefix in etcd (needs a build with the `etcd` feature).
#[pyclass(module = "peerlb._peerlb", name = "EtcdUpdater", frozen)]
pub struct PyEtcdUpdater {
    #[cfg(feature = "etcd")]
    inner: peerlb::updater::EtcdUpdater,
}

#[pymethods]
impl PyEtcdUpdater {
    #[new]
    #[pyo3(signature = (endpoints, prefix, *, timeout=None, retry_interval=None))]
    fn new(
        py: Python<'_>,
        endpoints: &Bound<'_, PyAny>,
        prefix: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        retry_interval: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        guard(py, || {
            let prefix = convert::string("prefix", prefix)?;
            Self::build(py, endpoints, &prefix, timeout, retry_interval)
        })
    }

    /// Ties the prefix to `list`; returns a `Binding` (not started).
    fn bind(&self, py: Python<'_>, list: PyRef<'_, PyPeerList>) -> PyResult<PyBinding> {
        guard(py, || {
            #[cfg(feature = "etcd")]
            {
                Ok(PyBinding(self.inner.bind(&list.inner)))
            }
            #[cfg(not(feature = "etcd"))]
            {
                let _ = list;
                unreachable!("an EtcdUpdater cannot be made without the etcd feature")
            }
        })
    }
}

impl PyEtcdUpdater {
    /// `EtcdUpdater(endpoints, prefix, *, timeout, retry_interval)`.
    fn build(
        py: Python<'_>,
        endpoints: &Bound<'_, PyAny>,
        prefix: &str,
        timeout: Option<&Bound<'_, PyAny>>,
        retry_interval: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let endpoints = convert::strings("endpoints", endpoints)?;
        let timeout = convert::seconds("timeout", timeout)?;
        let retry = convert::seconds("retry_interval", retry_interval)?;
        #[cfg(feature = "etcd")]
        {
            let mut u = check(py, peerlb::updater::EtcdUpdater::new(endpoints, prefix))?;
            if let Some(d) = timeout {
                u = u.timeout(d);
            }
            if let Some(d) = retry {
                u = u.retry_interval(d);
            }
            Ok(PyEtcdUpdater { inner: u })
        }
        #[cfg(not(feature = "etcd"))]
        {
            let _ = (endpoints, prefix, timeout, retry);
            Err(invalid_argument(
                py,
                "this peerlb was built without etcd support (build the wheel with --features etcd)",
            ))
        }
    }
}

/// Follows clusters' endpoints on an xDS control plane (needs a build with the `xds`
/// feature).
#[pyclass(module = "peerlb._peerlb", name = "XdsUpdater", frozen)]
pub struct PyXdsUpdater {
    #[cfg(feature = "xds")]
    inner: peerlb::updater::XdsUpdater,
}

#[pymethods]
impl PyXdsUpdater {
    #[new]
    #[pyo3(signature = (server, clusters, *, node_id=None, node_cluster=None, timeout=None,
        backoff_initial=None, backoff_max=None))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments
    fn new(
        py: Python<'_>,
        server: &Bound<'_, PyAny>,
        clusters: &Bound<'_, PyAny>,
        node_id: Option<&Bound<'_, PyAny>>,
        node_cluster: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        backoff_initial: Option<&Bound<'_, PyAny>>,
        backoff_max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        guard(py, || {
            let server = convert::string("server", server)?;
            if clusters.is_instance_of::<pyo3::types::PyString>() {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "clusters must be an iterable of names, not one string",
                ));
            }
            let clusters = convert::strings("clusters", clusters)?;
            let node_id = node_id.map(|v| convert::string("node_id", v)).transpose()?;
            let node_cluster = node_cluster
                .map(|v| convert::string("node_cluster", v))
                .transpose()?;
            let timeout = convert::seconds("timeout", timeout)?;
            let initial = convert::seconds("backoff_initial", backoff_initial)?;
            let max = convert::seconds("backoff_max", backoff_max)?;
            #[cfg(feature = "xds")]
            {
                let mut u = check(py, peerlb::updater::XdsUpdater::new(&server, clusters))?;
                if let Some(id) = node_id {
                    u = check(py, u.node_id(&id))?;
                }
                if let Some(c) = node_cluster {
                    u = check(py, u.node_cluster(&c))?;
                }
                if let Some(d) = timeout {
                    u = u.timeout(d);
                }
                if let Some(d) = initial {
                    u = u.backoff_initial(d);
                }
                if let Some(d) = max {
                    u = u.backoff_max(d);
                }
                Ok(PyXdsUpdater { inner: u })
            }
            #[cfg(not(feature = "xds"))]
            {
                let _ = (
                    server,
                    clusters,
                    node_id,
                    node_cluster,
                    timeout,
                    initial,
                    max,
                );
                Err(invalid_argument(
                    py,
                    "this peerlb was built without xDS support (build the wheel with --features xds)",
                ))
            }
        })
    }

    /// Ties the clusters to `list`; returns a `Binding` (not started).
    fn bind(&self, py: Python<'_>, list: PyRef<'_, PyPeerList>) -> PyResult<PyBinding> {
        guard(py, || {
            #[cfg(feature = "xds")]
            {
                Ok(PyBinding(self.inner.bind(&list.inner)))
            }
            #[cfg(not(feature = "xds"))]
            {
                let _ = list;
                unreachable!("an XdsUpdater cannot be made without the xds feature")
            }
        })
    }
}

/// An updater bound to a list: `start()`/`stop()`, or use it as a context manager.
#[pyclass(module = "peerlb._peerlb", name = "Binding", frozen)]
pub struct PyBinding(Binding);

#[pymethods]
impl PyBinding {
    /// Starts following the source (static and file apply before returning).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || check(py, py.detach(|| self.0.start())))
    }

    /// Stops following the source; the peers stay in the list.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, || check(py, py.detach(|| self.0.stop())))
    }

    /// Whether it is started.
    #[getter]
    fn running(&self, py: Python<'_>) -> PyResult<bool> {
        guard(py, || Ok(self.0.is_running()))
    }

    /// What it follows, e.g. ``file:/etc/peers``.
    #[getter]
    fn source(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || Ok(self.0.describe().to_owned()))
    }

    /// The set last applied: ``[(id, weight), ...]`` sorted by id.
    fn peers(&self, py: Python<'_>) -> PyResult<Vec<(String, u32)>> {
        guard(py, || {
            Ok(py.detach(|| {
                self.0
                    .peers()
                    .into_iter()
                    .map(|p| (p.id, p.weight))
                    .collect()
            }))
        })
    }

    /// The source's current failure (a ``peerlb.SourceFailed``), or None.
    #[getter]
    fn last_error(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        guard(py, || {
            Ok(self
                .0
                .last_error()
                .map(|e: Error| to_pyerr(py, &e).into_value(py).into_any()))
        })
    }

    /// Counters: ``{"good_reads": n, "changes": n, "failures": n}``.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guard(py, || {
            let s = self.0.stats();
            let d = PyDict::new(py);
            d.set_item("good_reads", s.good_reads)?;
            d.set_item("changes", s.changes)?;
            d.set_item("failures", s.failures)?;
            Ok(d)
        })
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf.clone())
    }

    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        guard(py, || {
            // Not-started is fine here (stopped inside the block).
            let _ = py.detach(|| self.0.stop());
            Ok(false)
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let state = if self.running(py)? {
            "running"
        } else {
            "stopped"
        };
        Ok(format!("<peerlb.Binding {} {state}>", self.0.describe()))
    }
}

/// Registers the classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStaticUpdater>()?;
    m.add_class::<PyFileUpdater>()?;
    m.add_class::<PyDnsUpdater>()?;
    m.add_class::<PyEtcdUpdater>()?;
    m.add_class::<PyXdsUpdater>()?;
    m.add_class::<PyBinding>()?;
    Ok(())
}
