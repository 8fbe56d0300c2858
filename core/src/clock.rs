//! Time for strategies and health logic: the real monotonic clock, or a manual one that
//! tests move by hand.
//!
//! A [`Clock`] is cheap to clone and hands out [`Instant`]s, so code written against it
//! looks like code written against `Instant::now()`. The manual clock starts at the real
//! "now" when it is made and only moves when told to ([`ManualClock::advance`]), so tests
//! of time-based behaviour (decays, slow start, backoff) run instantly and exactly.
//!
//! ```
//! use std::time::Duration;
//! use peerlb::clock::{Clock, ManualClock};
//!
//! let manual = ManualClock::new();
//! let clock = Clock::from(manual.clone());
//! let t0 = clock.now();
//! manual.advance(Duration::from_secs(3));
//! assert_eq!(clock.now() - t0, Duration::from_secs(3));
//!
//! let real = Clock::real();
//! assert!(real.now() >= t0 || real.now() < t0); // any instant; real time moves by itself
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A callback [`Clock::call_at`] runs once its time has come.
pub type TimerCallback = Box<dyn FnOnce() + Send + 'static>;

/// A source of monotonic [`Instant`]s: the system's, or a [`ManualClock`].
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<ManualClock>,
}

impl Clock {
    /// The real monotonic clock (`Instant::now`). Also `Clock::default()`.
    ///
    /// ```
    /// let c = peerlb::clock::Clock::real();
    /// assert!(!c.is_manual());
    /// ```
    pub fn real() -> Clock {
        Clock { manual: None }
    }

    /// The current instant.
    ///
    /// ```
    /// let c = peerlb::clock::Clock::real();
    /// let a = c.now();
    /// assert!(c.now() >= a);
    /// ```
    #[inline]
    pub fn now(&self) -> Instant {
        match &self.manual {
            None => Instant::now(),
            Some(m) => m.now(),
        }
    }

    /// The current time in nanoseconds on this clock's own monotonic scale: cheaper than
    /// [`Clock::now`] for timestamps that are only compared with each other (the real clock
    /// reads `CLOCK_MONOTONIC` directly, with no `Instant` arithmetic; a manual clock gives
    /// how far it has been advanced). Values of two clocks are not comparable, nor with
    /// [`Instant`]s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerlb::clock::{Clock, ManualClock};
    /// let manual = ManualClock::new();
    /// let clock = Clock::from(manual.clone());
    /// let t0 = clock.now_ns();
    /// manual.advance(Duration::from_millis(3));
    /// assert_eq!(clock.now_ns() - t0, 3_000_000);
    /// let real = Clock::real();
    /// assert!(real.now_ns() <= real.now_ns());
    /// ```
    #[inline]
    pub fn now_ns(&self) -> u64 {
        match &self.manual {
            None => real_now_ns(),
            Some(m) => m.now_ns(),
        }
    }

    /// Whether this is a manual (test) clock.
    ///
    /// ```
    /// use peerlb::clock::{Clock, ManualClock};
    /// assert!(Clock::from(ManualClock::new()).is_manual());
    /// ```
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Runs `f` once, at or soon after `at` on this clock, holding no lock of the caller's.
    ///
    /// On the real clock it is a timer task on the library's runtime
    /// ([`crate::runtime`]); on a [`ManualClock`] it runs inside the
    /// [`ManualClock::advance`] call that moves the clock to or past `at` (or at once when
    /// `at` has already passed). Callbacks that need an object should hold it weakly, so a
    /// pending timer never keeps it alive.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    /// use std::time::Duration;
    /// use peerlb::clock::{Clock, ManualClock};
    ///
    /// let manual = ManualClock::new();
    /// let clock = Clock::from(manual.clone());
    /// let fired = Arc::new(AtomicBool::new(false));
    /// let f = fired.clone();
    /// clock.call_at(clock.now() + Duration::from_secs(5), Box::new(move || f.store(true, Ordering::SeqCst)));
    /// manual.advance(Duration::from_secs(4));
    /// assert!(!fired.load(Ordering::SeqCst));
    /// manual.advance(Duration::from_secs(1));
    /// assert!(fired.load(Ordering::SeqCst));
    /// ```
    pub fn call_at(&self, at: Instant, f: TimerCallback) {
        match &self.manual {
            Some(m) => m.call_at(at, f),
            None => {
                crate::runtime::handle().spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    // Callbacks (and the user callbacks they lead to) run on the blocking
                    // pool, never on an async worker.
                    crate::runtime::run_blocking(f);
                });
            }
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (the clock `Instant` reads on Unix).
#[cfg(unix)]
#[inline]
fn real_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec on this stack frame.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Nanoseconds since the first call in this process (elsewhere than Unix).
#[cfg(not(unix))]
#[inline]
fn real_now_ns() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(Instant::now().duration_since(base).as_nanos()).unwrap_or(u64::MAX)
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Clock {
        Clock {
            manual: Some(manual),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::real"),
            Some(m) => write!(f, "Clock::manual(+{:?})", m.elapsed()),
        }
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it. Clones share one
/// time, so a test keeps a clone and hands another to the list (as a [`Clock`]).
///
/// ```
/// use std::time::Duration;
/// use peerlb::clock::ManualClock;
/// let m = ManualClock::new();
/// let t0 = m.now();
/// assert_eq!(m.now(), t0);
/// m.advance(Duration::from_millis(250));
/// assert_eq!(m.now() - t0, Duration::from_millis(250));
/// assert_eq!(m.elapsed(), Duration::from_millis(250));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    start: Instant,
    /// Nanoseconds since `start`.
    offset: AtomicU64,
    /// Callbacks waiting for the clock to reach their instant.
    timers: Mutex<Timers>,
}

#[derive(Default)]
struct Timers {
    waiting: Vec<(Instant, TimerCallback)>,
    /// A thread is running due callbacks (one at a time, so they run in time order).
    running: bool,
}

impl ManualClock {
    /// A manual clock reading the real current instant until advanced.
    pub fn new() -> ManualClock {
        ManualClock {
            inner: Arc::new(ManualInner {
                start: Instant::now(),
                offset: AtomicU64::new(0),
                timers: Mutex::new(Timers::default()),
            }),
        }
    }

    /// Its current instant.
    pub fn now(&self) -> Instant {
        self.inner.start + self.elapsed()
    }

    /// Its time in nanoseconds for [`Clock::now_ns`]: how far it has been advanced.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.inner.offset.load(Ordering::Acquire)
    }

    /// How far it has been advanced in total.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.offset.load(Ordering::Acquire))
    }

    /// Moves the clock forward by `by` (saturating after ~584 years), then runs, in time
    /// order and on this thread, every [`Clock::call_at`] callback that has come due (no
    /// lock held while they run; a callback may schedule more or advance the clock again).
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .inner
            .offset
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                Some(o.saturating_add(nanos))
            });
        self.run_due();
    }

    fn call_at(&self, at: Instant, f: TimerCallback) {
        self.timers().waiting.push((at, f));
        self.run_due();
    }

    fn timers(&self) -> std::sync::MutexGuard<'_, Timers> {
        self.inner.timers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs due callbacks one at a time, earliest first, without holding the timer lock.
    /// One thread runs them at a time: a thread that finds another one running (or an
    /// outer frame of its own, when a callback advances the clock) leaves them to it.
    fn run_due(&self) {
        {
            let mut timers = self.timers();
            if timers.running {
                return;
            }
            timers.running = true;
        }
        loop {
            let next = {
                let mut timers = self.timers();
                // Read under the lock: an `advance` that found this thread running has
                // moved the clock before it looked, so this reading includes it.
                let now = self.now();
                let due = timers
                    .waiting
                    .iter()
                    .enumerate()
                    .filter(|(_, (at, _))| *at <= now)
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(i, _)| i);
                let next = due.map(|i| timers.waiting.swap_remove(i).1);
                if next.is_none() {
                    timers.running = false;
                }
                next
            };
            match next {
                Some(f) => {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                }
                None => return,
            }
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManualClock(+{:?})", self.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_time_and_advance_saturates() {
        let m = ManualClock::new();
        let c = Clock::from(m.clone());
        let t0 = c.now();
        m.clone().advance(Duration::from_secs(1));
        assert_eq!(c.now() - t0, Duration::from_secs(1));
        m.advance(Duration::MAX);
        assert_eq!(m.elapsed(), Duration::from_nanos(u64::MAX));
    }
}
