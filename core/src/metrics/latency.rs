//! Latency histograms with per-thread shards.
//!
//! Recording a latency must cost a few nanoseconds: two atomic read-modify-writes (a bucket
//! and the sum) cost about 12 ns on the machines this project is measured on, so each
//! histogram is split into **shards, one per thread that records into it**. A thread only
//! ever writes its own shard, with plain loads and stores of relaxed atomics (no
//! read-modify-write), and a scrape adds the shards up.
//!
//! How a thread finds its shard: every live histogram has a small process-wide `index`
//! (recycled when the histogram goes) and a `generation` (never reused). Each thread keeps
//! a table indexed by `index`; an entry is the thread's shard of the histogram whose
//! generation it carries. The first record of a thread into a histogram (or after the
//! index was recycled) makes the shard and registers it with the histogram. When the thread
//! ends, its shards are folded into their histograms' `retired` totals, so no count is lost
//! and dead threads leave no shards behind.
//!
//! Buckets are powers of two of nanoseconds, so finding one is a leading-zero count:
//! `le` = 2^17 ns (131 µs), 2^18 ns, …, 2^33 ns (8.6 s), then `+Inf`.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// Exponent of the smallest bucket bound (2^17 ns ≈ 131 µs).
const FIRST_EXPONENT: u32 = 17;
/// Finite bucket bounds: 2^17 ..= 2^33 ns.
pub(crate) const FINITE_BUCKETS: usize = 17;
/// Every bucket, `+Inf` included.
pub(crate) const BUCKETS: usize = FINITE_BUCKETS + 1;

/// The upper bound of finite bucket `i`, in seconds.
pub(crate) fn bucket_bound_seconds(i: usize) -> f64 {
    (1u64 << (FIRST_EXPONENT as usize + i)) as f64 / 1e9
}

/// The bucket of a latency of `nanos`: the first whose bound is at least `nanos`.
#[inline]
fn bucket_of(nanos: u64) -> usize {
    // For nanos in (2^(17+k-1), 2^(17+k)], (nanos - 1) >> 17 has exactly k bits.
    let k = 64 - (nanos.saturating_sub(1) >> FIRST_EXPONENT).leading_zeros();
    (k as usize).min(FINITE_BUCKETS)
}

/// One thread's counts (or the folded counts of ended threads).
struct Shard {
    /// The generation of the histogram it belongs to.
    generation: u64,
    histogram: Weak<LatencyHistogram>,
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl Shard {
    fn new(generation: u64, histogram: Weak<LatencyHistogram>) -> Shard {
        Shard {
            generation,
            histogram,
            buckets: Default::default(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Adds one sample; only the shard's own thread calls this (a single writer), so a
    /// plain load and store is exact.
    #[inline]
    fn add_owned(&self, nanos: u64) {
        let bucket = &self.buckets[bucket_of(nanos)];
        bucket.store(bucket.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        let sum = self.sum_nanos.load(Ordering::Relaxed);
        self.sum_nanos
            .store(sum.wrapping_add(nanos), Ordering::Relaxed);
    }

    /// Adds one sample from any thread.
    fn add_shared(&self, nanos: u64) {
        self.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Adds another shard's counts (from any thread).
    fn absorb(&self, other: &Shard) {
        for (mine, theirs) in self.buckets.iter().zip(&other.buckets) {
            mine.fetch_add(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.sum_nanos
            .fetch_add(other.sum_nanos.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    fn add_to(&self, snapshot: &mut LatencySnapshot) {
        for (total, bucket) in snapshot.buckets.iter_mut().zip(&self.buckets) {
            *total += bucket.load(Ordering::Relaxed);
        }
        snapshot.sum_nanos = snapshot
            .sum_nanos
            .wrapping_add(self.sum_nanos.load(Ordering::Relaxed));
    }
}

/// Counts of a histogram at one moment: per bucket (not cumulative) and the sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LatencySnapshot {
    pub(crate) buckets: [u64; BUCKETS],
    pub(crate) sum_nanos: u64,
}

impl LatencySnapshot {
    /// Samples in all.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// A latency histogram (see the [module docs](self)).
pub(crate) struct LatencyHistogram {
    index: usize,
    generation: u64,
    /// The shards of the threads recording into it now.
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Counts of threads that ended, and of records made while a thread was ending; made
    /// the first time it is needed (most histograms never need it, and it is the largest
    /// part of one: a per-peer histogram is paid by every peer of every list).
    retired: OnceLock<Box<Shard>>,
}

/// Index recycling and generations for histograms.
struct Indices {
    free: Vec<usize>,
    next: usize,
    generation: u64,
}

fn indices() -> std::sync::MutexGuard<'static, Indices> {
    static INDICES: OnceLock<Mutex<Indices>> = OnceLock::new();
    INDICES
        .get_or_init(|| {
            Mutex::new(Indices {
                free: Vec::new(),
                next: 0,
                generation: 0,
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// One thread's shards, by histogram index.
struct ThreadTable {
    shards: Vec<Option<Arc<Shard>>>,
}

impl ThreadTable {
    /// Publishes where the entries are now, for [`LatencyHistogram::record`]'s fast path.
    fn publish(&self) {
        FAST.with(|f| f.set((self.shards.as_ptr(), self.shards.len())));
    }
}

impl Drop for ThreadTable {
    /// The thread ends: its counts move to their histograms' retired totals.
    fn drop(&mut self) {
        FAST.with(|f| f.set((std::ptr::null(), 0)));
        for shard in self.shards.drain(..).flatten() {
            if let Some(histogram) = shard.histogram.upgrade() {
                histogram.retire(&shard);
            }
        }
    }
}

thread_local! {
    /// Only `record_slow` touches it, and it calls out of this module while holding no
    /// reference, so no two references to it ever exist at once.
    static TABLE: UnsafeCell<ThreadTable> = const {
        UnsafeCell::new(ThreadTable { shards: Vec::new() })
    };
    /// Where `TABLE`'s entries are (pointer, length), set by `record_slow` and by the
    /// table's drop. A plain cell without a destructor, so the fast path reads it with no
    /// lazy-initialization check; only this thread reads or writes the entries.
    static FAST: Cell<(*const Option<Arc<Shard>>, usize)> = const {
        Cell::new((std::ptr::null(), 0))
    };
}

impl LatencyHistogram {
    /// A new, empty histogram.
    pub(crate) fn new() -> Arc<LatencyHistogram> {
        let (index, generation) = {
            let mut ids = indices();
            ids.generation += 1;
            let index = ids.free.pop().unwrap_or_else(|| {
                ids.next += 1;
                ids.next - 1
            });
            (index, ids.generation)
        };
        Arc::new(LatencyHistogram {
            index,
            generation,
            shards: Mutex::new(Vec::new()),
            retired: OnceLock::new(),
        })
    }

    /// Records one latency.
    #[inline]
    pub(crate) fn record(self: &Arc<Self>, latency: Duration) {
        let nanos = latency
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(latency.subsec_nanos()));
        let (entries, len) = FAST.with(Cell::get);
        if self.index < len {
            // SAFETY: `FAST` describes this thread's live table (it is reset before the
            // table goes), and only this thread changes the table, not during this read.
            let entry = unsafe { &*entries.add(self.index) };
            if let Some(shard) = entry {
                if shard.generation == self.generation {
                    shard.add_owned(nanos);
                    return;
                }
            }
        }
        self.record_slow(nanos);
    }

    /// The first record of this thread into this histogram: makes its shard.
    #[cold]
    #[inline(never)]
    fn record_slow(self: &Arc<Self>, nanos: u64) {
        let made = TABLE.try_with(|table| {
            // SAFETY: see TABLE: no other reference to the table exists during this call.
            let table = unsafe { &mut *table.get() };
            if table.shards.len() <= self.index {
                table.shards.resize(self.index + 1, None);
            }
            let shard = Arc::new(Shard::new(self.generation, Arc::downgrade(self)));
            self.shards
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(shard.clone());
            shard.add_owned(nanos);
            // A stale shard of an earlier histogram with this index is dropped here (its
            // histogram is gone, or it would still hold the index).
            table.shards[self.index] = Some(shard);
            table.publish();
        });
        if made.is_err() {
            // The thread is ending and its table is gone.
            self.retired().add_shared(nanos);
        }
    }

    /// The retired totals (made on first use).
    fn retired(&self) -> &Shard {
        self.retired
            .get_or_init(|| Box::new(Shard::new(self.generation, Weak::new())))
    }

    /// Moves an ending thread's shard into the retired totals.
    fn retire(&self, shard: &Arc<Shard>) {
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = shards.iter().position(|s| Arc::ptr_eq(s, shard)) {
            shards.swap_remove(at);
            // Under the lock, so a scrape sees it in one place or the other, never both.
            self.retired().absorb(shard);
        }
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> LatencySnapshot {
        let mut snapshot = LatencySnapshot::default();
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(retired) = self.retired.get() {
            retired.add_to(&mut snapshot);
        }
        for shard in shards.iter() {
            shard.add_to(&mut snapshot);
        }
        snapshot
    }
}

impl Drop for LatencyHistogram {
    fn drop(&mut self) {
        indices().free.push(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_inclusive() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1 << 17), 0);
        assert_eq!(bucket_of((1 << 17) + 1), 1);
        assert_eq!(bucket_of(1 << 18), 1);
        assert_eq!(bucket_of(1 << 33), FINITE_BUCKETS - 1);
        assert_eq!(bucket_of((1 << 33) + 1), FINITE_BUCKETS);
        assert_eq!(bucket_of(u64::MAX), FINITE_BUCKETS);
        assert_eq!(bucket_bound_seconds(0), 0.000131072);
    }

    #[test]
    fn threads_record_into_their_own_shards_and_ended_threads_are_folded() {
        let h = LatencyHistogram::new();
        h.record(Duration::from_millis(1));
        h.record(Duration::from_millis(1));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        h.record(Duration::from_micros(100));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 4002);
        assert_eq!(s.buckets[0], 4000);
        assert_eq!(s.sum_nanos, 4000 * 100_000 + 2 * 1_000_000);
        // The four threads ended: only this thread's shard is still registered.
        assert_eq!(h.shards.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_recycled_index_gets_a_fresh_shard() {
        let first = LatencyHistogram::new();
        first.record(Duration::from_millis(5));
        drop(first);
        // Most likely the same index (the last freed is reused first); either way the
        // new histogram starts empty.
        let again = LatencyHistogram::new();
        again.record(Duration::from_millis(5));
        assert_eq!(again.snapshot().count(), 1);
    }
}
