//! Answers that are ready now or come later: what the non-blocking entry points
//! ([`PeerList::choose_now`](crate::PeerList::choose_now),
//! [`Retry::choose_now`](crate::Retry::choose_now)) return, so that every caller (a blocking
//! binding, an event loop, a Rust executor) takes the fast path inline and decides itself
//! how to wait for the slow one.
//!
//! A [`Later`] owns everything it needs (`Send + 'static`) and waits on the library's
//! deadline timer, which is its own thread: waiting never depends on a worker of the
//! library's runtime being free, and needs no runtime context at all.
//!
//! ```
//! use std::time::Duration;
//! use peerlb::{ListOptions, NowOrLater, PeerList, Request};
//! let list = PeerList::new(ListOptions::default()).unwrap();
//! list.start().unwrap();
//! let request = Request::new().with_timeout(Duration::from_millis(10));
//! match list.choose_now(&request) {
//!     NowOrLater::Now(result) => drop(result),
//!     NowOrLater::Later(wait) => {
//!         // Block this thread (or `.await` it, or spawn it on an executor).
//!         let err = wait.wait().unwrap_err();
//!         assert_eq!(err.code(), peerlb::ErrorCode::Timeout);
//!     }
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Ready now, or a wait for the answer.
pub enum NowOrLater<T> {
    /// The answer, decided without waiting.
    Now(T),
    /// The answer needs a wait; block on it or await it.
    Later(Later<T>),
}

impl<T> NowOrLater<T> {
    /// The answer, blocking this thread if it is not ready.
    pub fn wait(self) -> T {
        match self {
            NowOrLater::Now(v) => v,
            NowOrLater::Later(later) => later.wait(),
        }
    }
}

impl<T> fmt::Debug for NowOrLater<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NowOrLater::Now(_) => f.write_str("Now(..)"),
            NowOrLater::Later(_) => f.write_str("Later(..)"),
        }
    }
}

/// A pending answer: a future that owns what it needs. Await it under any executor, or
/// block on it with [`Later::wait`] / [`Later::wait_for`]. Dropping it abandons the wait.
#[must_use = "a Later does nothing unless waited for or awaited"]
pub struct Later<T> {
    future: Pin<Box<dyn Future<Output = T> + Send + 'static>>,
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl<T> Later<T> {
    /// Wraps a future.
    pub fn new(future: impl Future<Output = T> + Send + 'static) -> Later<T> {
        Later {
            future: Box::pin(future),
        }
    }

    /// Blocks this thread until the answer is there.
    pub fn wait(mut self) -> T {
        loop {
            if let Some(v) = self.wait_for(Duration::from_secs(3600)) {
                return v;
            }
        }
    }

    /// Blocks this thread for at most `slice`: `Some(answer)`, or `None` when the slice
    /// ended first (the wait goes on at the next call). Bindings use slices to let their
    /// runtime handle signals (Python's Ctrl-C) while they wait.
    pub fn wait_for(&mut self, slice: Duration) -> Option<T> {
        poll_for(self.future.as_mut(), slice)
    }
}

/// Polls `future` on this thread, parking between wake-ups, for at most `slice`.
fn poll_for<F: Future + ?Sized>(mut future: Pin<&mut F>, slice: Duration) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let now = Instant::now();
    let end = now
        .checked_add(slice)
        .unwrap_or(now + Duration::from_secs(3600));
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        thread::park_timeout(end - now);
    }
}

/// Runs `future` to completion on this thread (no runtime needed: what it waits on wakes
/// the thread).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    loop {
        if let Some(v) = poll_for(future.as_mut(), Duration::from_secs(3600)) {
            return v;
        }
    }
}

impl<T> Future for Later<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.future.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for Later<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Later(..)")
    }
}
