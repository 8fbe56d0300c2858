//! Reconnect backoff of the xDS updater: exponential, bounded, jittered.

use std::time::Duration;

/// Exponential backoff between `initial` and `max`: each failure doubles the wait (up to
/// `max`), each wait is drawn in `[0.8, 1.2] ×` the current step (never above `max`), and
/// a connection that delivered a response resets it to `initial`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// A backoff starting at `initial`, never waiting longer than `max`.
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            step: initial,
        }
    }

    /// Back to the first step (after a connection that worked).
    pub(crate) fn reset(&mut self) {
        self.step = self.initial;
    }

    /// The next wait, and the step after it doubled.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let factor: f64 = rand::random_range(0.8..=1.2);
        let delay = self.step.mul_f64(factor).min(self.max);
        self.step = self.step.saturating_mul(2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_bounded_jittered_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let first = b.next_delay();
        assert!((80..=120).contains(&first.as_millis()), "{first:?}");
        let second = b.next_delay();
        assert!((160..=240).contains(&second.as_millis()), "{second:?}");
        for _ in 0..10 {
            assert!(b.next_delay() <= Duration::from_millis(1000));
        }
        assert!(b.next_delay() >= Duration::from_millis(800));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
