//! Per-thread stripes: hot counters split over cache lines so that threads choosing at the
//! same time do not fight over one atomic.
//!
//! Each thread gets a stripe number (assigned in order of first use, modulo [`STRIPES`]);
//! a thread always uses the same stripe, so a single thread sees an exact, reproducible
//! order while two threads on two cores never share a counter's cache line.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Number of stripes (threads beyond this share stripes; counters stay atomic).
pub(crate) const STRIPES: usize = 16;

/// A value on its own cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Padded<T>(pub(crate) T);

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

/// The calling thread's stripe.
#[inline]
pub(crate) fn current() -> usize {
    STRIPE.with(|s| *s)
}

/// SplitMix64's output function: a well-mixed 64-bit value from a counter. Used as a
/// lock-free random source (one atomic add per draw on the caller's own stripe).
#[inline]
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64's increment (the golden ratio).
pub(crate) const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Per-stripe random number streams, reproducible per thread when seeded.
#[derive(Debug)]
pub(crate) struct StripedRng {
    states: Box<[Padded<std::sync::atomic::AtomicU64>]>,
}

impl StripedRng {
    /// Seeded streams (stripe `i` starts from a mix of `seed` and `i`), or streams seeded
    /// from the OS when `seed` is `None`.
    pub(crate) fn new(seed: Option<u64>) -> StripedRng {
        let base = seed.unwrap_or_else(rand::random);
        let states = (0..STRIPES as u64)
            .map(|i| {
                Padded(std::sync::atomic::AtomicU64::new(splitmix64(
                    base ^ i.wrapping_mul(GOLDEN),
                )))
            })
            .collect();
        StripedRng { states }
    }

    /// A random number in `0..n` (`n > 0`), drawn from the caller's stripe.
    #[inline]
    pub(crate) fn below(&self, n: usize) -> usize {
        let s = self.states[current()]
            .0
            .fetch_add(GOLDEN, Ordering::Relaxed)
            .wrapping_add(GOLDEN);
        // Lemire's multiply-shift maps a 64-bit draw onto 0..n without a division.
        ((splitmix64(s) as u128 * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let rng = StripedRng::new(Some(7));
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            seen[rng.below(5)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn seeded_streams_repeat() {
        let a = StripedRng::new(Some(42));
        let b = StripedRng::new(Some(42));
        let xs: Vec<usize> = (0..20).map(|_| a.below(1000)).collect();
        let ys: Vec<usize> = (0..20).map(|_| b.below(1000)).collect();
        assert_eq!(xs, ys);
    }
}
