//! `peerlb.deterministic_subset`: the core's deterministic subsetting.

use pyo3::prelude::*;

use crate::convert;
use crate::errors::guard;

/// Which `size` of `backends` client `client` connects to (Google SRE's deterministic
/// subsetting; one backend more or less moves at most one in and one out per client).
/// Every backend when `size` is 0 or at least their number.
#[pyfunction]
#[pyo3(signature = (backends, client, size))]
pub fn deterministic_subset(
    py: Python<'_>,
    backends: &Bound<'_, PyAny>,
    client: &Bound<'_, PyAny>,
    size: &Bound<'_, PyAny>,
) -> PyResult<Vec<String>> {
    guard(py, || {
        let backends = convert::strings("backends", backends)?;
        let client = convert::u64_arg("client", client)?;
        let size = convert::u64_arg("size", size)?;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        Ok(py.detach(|| peerlb::subset::deterministic_subset(&backends, client, size)))
    })
}
