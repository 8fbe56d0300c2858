//! Waiting for a core [`Later`] (what `choose_now` gives when a peer is not there yet)
//! without holding the GIL: blocking (`choose(timeout=...)`, `retry`), in slices so that
//! Python can handle signals such as Ctrl-C between them, and asyncio (`choose_async`,
//! `retry_async`), which blocks no thread at all.

use std::sync::Mutex;
use std::time::Duration;

use peerlb::Later;
use pyo3::intern;
use pyo3::prelude::*;
use tokio::task::AbortHandle;

use crate::choice::PyChoice;
use crate::errors::guard;

/// How long a blocked wait runs without the GIL before it takes it to check for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Waits for `later` on this thread with the GIL released, in slices of 100 ms; between
/// slices it runs Python's signal handlers, and an exception they raise
/// (`KeyboardInterrupt`) drops `later` (abandoning the wait) and is the `Err`.
pub fn block<T: Send>(py: Python<'_>, mut later: Later<T>) -> PyResult<T> {
    loop {
        if let Some(value) = py.detach(|| later.wait_for(SIGNAL_CHECK)) {
            return Ok(value);
        }
        py.check_signals()?;
    }
}

/// Turns what a [`Later`] gave into the value (or exception, with `true`) that completes
/// an asyncio future. Called with the GIL, on a library thread.
pub type Deliver<T> = Box<dyn FnOnce(Python<'_>, T) -> (Py<PyAny>, bool) + Send>;

/// Awaits `later` on the library runtime and completes `future` (of `event_loop`) with
/// what `deliver` makes of the answer, through `loop.call_soon_threadsafe`. No thread
/// waits meanwhile; cancelling `future` aborts the wait.
pub fn spawn<T: Send + 'static>(
    py: Python<'_>,
    later: Later<T>,
    event_loop: &Bound<'_, PyAny>,
    future: &Bound<'_, PyAny>,
    deliver: Deliver<T>,
) -> PyResult<()> {
    let event_loop = event_loop.clone().unbind();
    let target = future.clone().unbind();
    let complete = wrap_pyfunction!(_complete, py)?.into_any().unbind();
    let task = peerlb::runtime::handle().spawn(async move {
        let answer = later.await;
        // Taking the GIL may wait; do it off the runtime's async workers.
        drop(tokio::task::spawn_blocking(move || {
            Python::attach(|py| {
                let (value, is_error) = deliver(py, answer);
                schedule(py, &event_loop, &target, &complete, value, is_error);
            });
        }));
    });
    let cancel = CancelWait {
        abort: Mutex::new(Some(task.abort_handle())),
    };
    future.call_method1(intern!(py, "add_done_callback"), (cancel,))?;
    Ok(())
}

/// The `add_done_callback` of a future completed by [`spawn`]: when the asyncio side
/// cancels it, aborts the wait behind it.
#[pyclass(module = "peerlb._peerlb", name = "_CancelWait", frozen)]
pub struct CancelWait {
    abort: Mutex<Option<AbortHandle>>,
}

#[pymethods]
impl CancelWait {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(future.py(), || {
            if future
                .call_method0(intern!(future.py(), "cancelled"))?
                .is_truthy()?
            {
                if let Some(abort) = self.abort.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    abort.abort();
                }
            }
            Ok(())
        })
    }
}

/// Runs on the event loop (via `call_soon_threadsafe`): completes `future`, or, when it
/// was cancelled meanwhile, finishes the late choice as cancelled.
#[pyfunction]
pub fn _complete(
    future: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    is_error: bool,
) -> PyResult<()> {
    let py = future.py();
    guard(py, || {
        if future.call_method0(intern!(py, "done"))?.is_truthy()? {
            if let Ok(choice) = value.cast::<PyChoice>() {
                choice.get().release();
            }
            return Ok(());
        }
        if is_error {
            future.call_method1(intern!(py, "set_exception"), (value,))?;
        } else {
            future.call_method1(intern!(py, "set_result"), (value,))?;
        }
        Ok(())
    })
}

/// Completes `future` with `value` on its event loop (`_complete` via
/// `call_soon_threadsafe`); when the loop is closed, a choice nobody will take is ended.
fn schedule(
    py: Python<'_>,
    event_loop: &Py<PyAny>,
    future: &Py<PyAny>,
    complete: &Py<PyAny>,
    value: Py<PyAny>,
    is_error: bool,
) {
    let scheduled = event_loop.bind(py).call_method1(
        intern!(py, "call_soon_threadsafe"),
        (complete, future, &value, is_error),
    );
    if scheduled.is_err() {
        // The loop is closed: nobody will take the choice, so end it now.
        if let Ok(choice) = value.bind(py).cast::<PyChoice>() {
            choice.get().release();
        }
    }
}

/// A choice (or the error) as the value that completes a future: a `Choice`, or the
/// exception object with `true`.
pub fn choice_value(py: Python<'_>, result: PyResult<peerlb::Choice>) -> (Py<PyAny>, bool) {
    match result.and_then(|choice| Py::new(py, PyChoice::from_core(choice))) {
        Ok(choice) => (choice.into_any(), false),
        Err(e) => (e.into_value(py).into_any(), true),
    }
}
