//! Per-thread stripes: each thread works on its own cache line, so that threads choosing
//! at the same time never fight over one atomic.
//!
//! Each thread gets a stripe number (assigned in order of first use, modulo [`STRIPES`]);
//! a thread always uses the same stripe, so a single thread sees an exact, reproducible
//! order, while two threads on two cores touch disjoint cache lines.
//!
//! A [`StripeCell`] is a value guarded by a tiny spin lock. Taking it costs one atomic
//! compare-and-swap on a line that normally only its own thread touches; the holder never blocks, allocates
//! only on a (rare) refresh and never calls user code, so a thread that finds the cell
//! taken (two threads sharing a stripe, or a writer reading it) spins for nanoseconds.

use std::sync::atomic::AtomicUsize;

use crate::sync::{AtomicBool, Ordering, UnsafeCell};

/// Number of stripes (threads beyond this share stripes, safely).
pub(crate) const STRIPES: usize = 16;

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// "No stripe yet" in [`STRIPE`].
const UNASSIGNED: usize = usize::MAX;

thread_local! {
    // Const-initialized (no lazy-init state to check on every access, which matters in a
    // shared library, where each thread-local access is a call already); assigned on the
    // thread's first use.
    static STRIPE: std::cell::Cell<usize> = const { std::cell::Cell::new(UNASSIGNED) };
}

/// The calling thread's stripe.
#[inline]
pub(crate) fn current() -> usize {
    STRIPE.with(|s| {
        let stripe = s.get();
        if stripe != UNASSIGNED {
            stripe
        } else {
            assign(s)
        }
    })
}

/// Gives the calling thread its stripe, in order of first use.
#[cold]
fn assign(slot: &std::cell::Cell<usize>) -> usize {
    let stripe = NEXT_STRIPE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
    slot.set(stripe);
    stripe
}

/// How often a thread that finds a cell taken spins before it yields (under loom it
/// yields at once, so that the model checker schedules the holder).
const SPINS_BEFORE_YIELD: u32 = 64;

/// A value on its own cache line behind a spin lock (see the module docs).
#[repr(align(64))]
pub(crate) struct StripeCell<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `with`, which holds the lock, so at most one
// thread accesses it at a time; `T: Send` lets it move between those threads.
unsafe impl<T: Send> Sync for StripeCell<T> {}

struct Unlock<'a>(&'a AtomicBool);

impl Drop for Unlock<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl<T> StripeCell<T> {
    pub(crate) fn new(value: T) -> StripeCell<T> {
        StripeCell {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` with exclusive access to the value. `f` must not take this cell again.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        if !self.try_lock() {
            self.lock_contended();
        }
        let _unlock = Unlock(&self.locked);
        // SAFETY: we hold the lock until `_unlock` drops (also on unwind).
        self.value.with_mut(|value| f(unsafe { &mut *value }))
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                spins += 1;
                if spins >= SPINS_BEFORE_YIELD || cfg!(peerlb_loom) {
                    crate::sync::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            if self.try_lock() {
                return;
            }
        }
    }

    /// One attempt: a compare-and-swap, which (unlike a swap) writes nothing when the cell
    /// is taken. Both cost one locked instruction; the difference lets loom's model of the
    /// lock make progress (a waiter that re-stores `true` looks to it like a new event
    /// forever).
    #[inline]
    fn try_lock(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
}

/// One [`StripeCell`] per stripe.
pub(crate) struct Striped<T> {
    cells: Box<[StripeCell<T>]>,
}

impl<T> Striped<T> {
    /// Cells built by `init(stripe index)`.
    pub(crate) fn new(init: impl Fn(usize) -> T) -> Striped<T> {
        Striped {
            cells: (0..STRIPES).map(|i| StripeCell::new(init(i))).collect(),
        }
    }

    /// Runs `f` on the calling thread's cell.
    #[inline]
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.cells[current()].with(f)
    }

    /// Runs `f` on cell `stripe`.
    pub(crate) fn with<R>(&self, stripe: usize, f: impl FnOnce(&mut T) -> R) -> R {
        self.cells[stripe].with(f)
    }
}

/// SplitMix64's output function: a well-mixed 64-bit value from a counter.
#[inline]
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64's increment (the golden ratio).
pub(crate) const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A SplitMix64 stream: tiny, fast, statistically good for load balancing (not crypto).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    /// Stream `stripe` of `seed` (from the OS when `None`).
    pub(crate) fn for_stripe(seed: Option<u64>, stripe: usize) -> SplitMix {
        let base = seed.unwrap_or_else(rand::random);
        SplitMix(splitmix64(base ^ (stripe as u64).wrapping_mul(GOLDEN)))
    }

    /// A random number in `0..n` (`n > 0`).
    #[inline]
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(GOLDEN);
        // Lemire's multiply-shift maps a 64-bit draw onto 0..n without a division.
        ((splitmix64(self.0) as u128 * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix::for_stripe(Some(7), 0);
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            seen[rng.below(5)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn seeded_streams_repeat_and_stripes_differ() {
        let mut a = SplitMix::for_stripe(Some(42), 3);
        let mut b = SplitMix::for_stripe(Some(42), 3);
        let mut c = SplitMix::for_stripe(Some(42), 4);
        let xs: Vec<usize> = (0..20).map(|_| a.below(1000)).collect();
        let ys: Vec<usize> = (0..20).map(|_| b.below(1000)).collect();
        let zs: Vec<usize> = (0..20).map(|_| c.below(1000)).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn cells_exclude_each_other() {
        let cell = Arc::new(StripeCell::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cell = cell.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        cell.with(|v| *v += 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cell.with(|v| *v), 400_000);
    }
}
