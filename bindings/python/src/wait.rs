//! Waiting for a peer without holding the GIL: blocking (`choose` with a timeout, which
//! wakes every 100 ms to let Python handle signals such as Ctrl-C) and asyncio
//! (`choose_async`, which blocks no thread at all).

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use peerlb::{Choice, PeerList, Request};
use pyo3::intern;
use pyo3::prelude::*;
use tokio::task::AbortHandle;

use crate::errors::to_pyerr;
use crate::PyChoice;

/// How often a blocked `choose` comes back to check for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
}

/// Waits for a peer until `timeout`, with the GIL released; between 100 ms slices it
/// takes the GIL to run Python's signal handlers, so `KeyboardInterrupt` ends the wait.
///
/// The wait is one core `choose_async` request polled on this thread, so the deadline,
/// the error and its message are exactly core's.
pub fn choose_blocking(
    py: Python<'_>,
    list: &PeerList,
    timeout: Duration,
    key: Option<&[u8]>,
) -> PyResult<Choice> {
    let deadline = deadline_after(timeout);
    let mut request = Request::new().with_deadline(deadline);
    if let Some(k) = key {
        request = request.with_shard_key(k);
    }
    block_on(py, list.choose_async(&request))?.map_err(|e| to_pyerr(py, &e))
}

/// Polls `future` on this thread until it is ready, with the GIL released, inside the
/// library's runtime context (core's async waits create their deadline timers where they
/// are first polled). Between 100 ms slices it takes the GIL to run Python's signal
/// handlers: a `KeyboardInterrupt` drops the future (abandoning what it waited for) and
/// is the `Err`.
pub fn block_on<F>(py: Python<'_>, future: F) -> Result<F::Output, PyErr>
where
    F: Future + Send,
    F::Output: Send,
{
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let runtime = peerlb::runtime::handle();
    loop {
        let done = py.detach(|| {
            let _runtime = runtime.enter();
            let mut cx = Context::from_waker(&waker);
            let slice_end = Instant::now() + SIGNAL_CHECK;
            loop {
                if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
                    return Some(result);
                }
                let now = Instant::now();
                if now >= slice_end {
                    return None;
                }
                thread::park_timeout(slice_end - now);
            }
        });
        match done {
            Some(result) => return Ok(result),
            None => py.check_signals()?,
        }
    }
}

/// The `add_done_callback` of a `choose_async` future: when the asyncio side cancels it,
/// aborts the waiting core request.
#[pyclass(module = "peerlb._peerlb", name = "_CancelWait", frozen)]
pub struct CancelWait {
    abort: Mutex<Option<AbortHandle>>,
}

#[pymethods]
impl CancelWait {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future
            .call_method0(intern!(future.py(), "cancelled"))?
            .is_truthy()?
        {
            if let Some(abort) = self.abort.lock().unwrap_or_else(|e| e.into_inner()).take() {
                abort.abort();
            }
        }
        Ok(())
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
}

/// Starts the slow path of `choose_async`: a core `choose_async` on the library runtime
/// that completes `future` (created on `event_loop`) when it ends. No thread waits.
pub fn spawn_choose(
    py: Python<'_>,
    list: &PeerList,
    timeout: Duration,
    key: Option<Vec<u8>>,
    event_loop: &Bound<'_, PyAny>,
    future: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let deadline = deadline_after(timeout);
    let list = list.clone();
    let event_loop = event_loop.clone().unbind();
    let target = future.clone().unbind();
    let complete = wrap_pyfunction!(_complete, py)?.into_any().unbind();
    let task = peerlb::runtime::handle().spawn(async move {
        let result = {
            let mut request = Request::new().with_deadline(deadline);
            if let Some(k) = &key {
                request = request.with_shard_key(k);
            }
            list.choose_async(&request).await
        };
        // Taking the GIL may wait; do it off the runtime's worker threads.
        drop(tokio::task::spawn_blocking(move || {
            Python::attach(|py| deliver(py, result, &event_loop, &target, &complete));
            // The list clone may be the last reference: drop it with the GIL free.
            drop(list);
        }));
    });
    cancel_on_done(py, future, task.abort_handle())
}

/// When the asyncio side cancels `future`, aborts `task` (the core wait behind it).
pub fn cancel_on_done(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    task: AbortHandle,
) -> PyResult<()> {
    let cancel = CancelWait {
        abort: Mutex::new(Some(task)),
    };
    future.call_method1(intern!(py, "add_done_callback"), (cancel,))?;
    Ok(())
}

fn deliver(
    py: Python<'_>,
    result: peerlb::Result<Choice>,
    event_loop: &Py<PyAny>,
    future: &Py<PyAny>,
    complete: &Py<PyAny>,
) {
    let (value, is_error): (Py<PyAny>, bool) = match result {
        Ok(choice) => match Py::new(py, PyChoice::from_core(choice)) {
            Ok(c) => (c.into_any(), false),
            Err(e) => (e.into_value(py).into_any(), true),
        },
        Err(e) => (to_pyerr(py, &e).into_value(py).into_any(), true),
    };
    schedule(py, event_loop, future, complete, value, is_error);
}

/// Completes `future` with `value` on its event loop (`_complete` via
/// `call_soon_threadsafe`); when the loop is closed, a choice nobody will take is ended.
pub fn schedule(
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
