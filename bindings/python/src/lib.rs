//! `peerlb._peerlb`: the native module under the `peerlb` Python package.
//!
//! A thin translation layer over the Rust crate `peerlb`: Python values become core values
//! (`convert`), core errors become `peerlb.PeerlbError` subclasses (`errors`), Python
//! transports become core transports (`transport`), and waiting happens without holding
//! the GIL (`wait`). No balancing logic lives here.
//!
//! Not a Rust API: the public items are pyo3 classes, documented for Python users in
//! `python/peerlb/_peerlb.pyi` and `README.md`.

use pyo3::prelude::*;

mod choice;
mod convert;
mod errors;
mod events;
mod list;
mod load;
mod ops;
mod request_rule;
mod retry;
mod session;
mod subset;
mod transport;
mod updater;
mod upstream;
mod wait;

pub use choice::PyChoice;
pub use list::PyPeerList;
use transport::PySubscriber;

/// The native module `peerlb._peerlb`.
#[pymodule]
fn _peerlb(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPeerList>()?;
    m.add_class::<PyChoice>()?;
    m.add_class::<load::PyLoadReport>()?;
    m.add_class::<PySubscriber>()?;
    m.add_class::<events::PyPeerEvent>()?;
    m.add_class::<events::PySubscription>()?;
    m.add_class::<retry::PyManualClock>()?;
    m.add_class::<retry::PyRetryBudget>()?;
    m.add_class::<retry::PyRetryCall>()?;
    m.add_class::<request_rule::PyRequestRule>()?;
    m.add_class::<request_rule::PyRequestCall>()?;
    m.add_class::<session::PySession>()?;
    m.add_class::<session::PySessionEvent>()?;
    m.add_class::<upstream::PyUpstream>()?;
    upstream::register_atexit(m)?;
    m.add_class::<wait::CancelWait>()?;
    m.add_class::<ops::PyAdminServer>()?;
    m.add_function(wrap_pyfunction!(ops::serve_admin, m)?)?;
    m.add_function(wrap_pyfunction!(ops::metrics, m)?)?;
    updater::register(m)?;
    m.add_function(wrap_pyfunction!(subset::deterministic_subset, m)?)?;
    m.add_function(wrap_pyfunction!(wait::_complete, m)?)?;
    m.add_function(wrap_pyfunction!(errors::_panic, m)?)?;
    m.add("__version__", peerlb::VERSION)?;
    m.add("ERROR_CODES", errors::codes())?;
    let strategies: Vec<&str> = peerlb::StrategyKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    m.add("STRATEGIES", strategies)?;
    Ok(())
}
