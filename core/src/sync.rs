//! The synchronization primitives of the lock-free pieces (the stripe lock, a peer's packed
//! reference + pending counter, the published snapshots, the event bus), in one place so
//! that a `--cfg peerlb_loom` build can swap them for [loom](https://docs.rs/loom)'s, which explore
//! every interleaving of a small model (`core/src/loom_models.rs`, `make test-loom`).
//!
//! In normal builds every item here is the standard library's (or arc-swap's) type itself,
//! or a wrapper that compiles to nothing, so the shim costs the hot path nothing.

#[cfg(not(peerlb_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(peerlb_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(peerlb_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(peerlb_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Gives the CPU to another thread while spinning on a lock (loom: lets the model schedule
/// the holder, so a spin loop cannot explore forever).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(peerlb_loom))]
    std::thread::yield_now();
    #[cfg(peerlb_loom)]
    loom::thread::yield_now();
}

/// An interior-mutable value whose accesses loom checks for data races.
#[cfg(not(peerlb_loom))]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(peerlb_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer to the value; the caller must hold whatever excludes
    /// other accesses.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(peerlb_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// The atomically replaceable `Arc` the snapshots are published through: arc-swap's, and
/// under loom a mutex around an `Arc` (arc-swap is not instrumented for loom; its own test
/// suite covers it, and the models check what this crate builds on top of it).
#[cfg(not(peerlb_loom))]
pub(crate) type ArcCell<T> = arc_swap::ArcSwap<T>;

/// What [`ArcCell`]'s `load` returns: a short-lived handle to the current value.
#[cfg(not(peerlb_loom))]
pub(crate) type ArcGuard<T> = arc_swap::Guard<std::sync::Arc<T>>;

/// Under loom: a mutex around an `Arc` with arc-swap's method names.
#[cfg(peerlb_loom)]
pub(crate) struct ArcCell<T>(loom::sync::Mutex<std::sync::Arc<T>>);

/// Under loom: a strong reference (arc-swap's guards become strong references when the
/// value is replaced, which is when they matter).
#[cfg(peerlb_loom)]
pub(crate) type ArcGuard<T> = std::sync::Arc<T>;

#[cfg(peerlb_loom)]
impl<T> ArcCell<T> {
    pub(crate) fn from_pointee(value: T) -> ArcCell<T> {
        ArcCell(loom::sync::Mutex::new(std::sync::Arc::new(value)))
    }

    pub(crate) fn load_full(&self) -> std::sync::Arc<T> {
        self.0.lock().unwrap().clone()
    }

    pub(crate) fn load(&self) -> ArcGuard<T> {
        self.load_full()
    }

    pub(crate) fn store(&self, value: std::sync::Arc<T>) {
        let old = std::mem::replace(&mut *self.0.lock().unwrap(), value);
        drop(old);
    }
}

/// Marks the memory of a reference-counted object for loom: every release of a reference
/// reads it before giving the reference up, and the release that frees the object writes
/// it first. If the counter's orderings did not make the free happen after every other
/// thread's last use, loom reports the race on this cell. Zero-sized and free in normal
/// builds.
#[derive(Default)]
pub(crate) struct FreeCanary {
    #[cfg(peerlb_loom)]
    cell: loom::cell::UnsafeCell<u8>,
}

impl FreeCanary {
    /// A use of the object by a thread that still holds a reference.
    #[inline(always)]
    pub(crate) fn touch(&self) {
        #[cfg(peerlb_loom)]
        self.cell.with(|_| ());
    }

    /// The free: must come after every other thread's last `touch`.
    #[inline(always)]
    pub(crate) fn clobber(&self) {
        #[cfg(peerlb_loom)]
        self.cell.with_mut(|_| ());
    }
}
