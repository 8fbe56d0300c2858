//! Outlier ejection: the policy a [`PeerList`](crate::PeerList) follows to take peers that
//! keep failing out of rotation for a while (Envoy's *outlier detection*, Finagle's
//! *failure accrual*).
//!
//! * `consecutive_failures` (default 5) [`Outcome::Failure`](crate::Outcome::Failure)s in a
//!   row eject a peer. `ok` ends a streak; `declined` and `cancelled` neither count nor end
//!   it.
//! * An ejected peer is out for `base_time` × the number of times it has been ejected
//!   (default 30 s, 60 s, 90 s, …), at most `max_time` (default 300 s), then it is
//!   restored (event `restored`) with a clean streak.
//! * At most `max_percent` (default 10) of the list's peers are ejected at once, but
//!   always at least one may be.
//! * *Panic mode*: when fewer than `panic_threshold_percent` (default 50) of the enabled
//!   peers are healthy (available and not ejected), ejections are ignored and the list
//!   chooses among every available, enabled peer; introspection says `"panic": true`.
//!
//! Ejection is on by default; `ListOptions::ejection(None)` turns it off.
//!
//! ```
//! use std::time::Duration;
//! use peerlb::ejection::EjectionPolicy;
//!
//! let p = EjectionPolicy::default();
//! assert_eq!(p.consecutive_failures, 5);
//! assert_eq!(p.ejection_time(1), Duration::from_secs(30));
//! assert_eq!(p.ejection_time(3), Duration::from_secs(90));
//! assert_eq!(p.ejection_time(50), Duration::from_secs(300));
//! assert_eq!(p.max_ejected(4), 1); // 10% of 4, but at least one
//! assert_eq!(p.max_ejected(30), 3);
//! ```

use std::time::Duration;

use crate::error::{Error, Result};

/// When to eject a peer and for how long. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectionPolicy {
    /// Failures in a row that eject a peer (at least 1).
    pub consecutive_failures: u32,
    /// Ejection time for the first ejection; the n-th lasts n times as long.
    pub base_time: Duration,
    /// The longest an ejection lasts.
    pub max_time: Duration,
    /// The most peers ejected at once, in percent of the list (0..=100); at least one peer
    /// may always be ejected.
    pub max_percent: u32,
    /// Below this percentage of healthy peers the list ignores ejections (0 = never).
    pub panic_threshold_percent: u32,
}

impl Default for EjectionPolicy {
    fn default() -> Self {
        EjectionPolicy {
            consecutive_failures: 5,
            base_time: Duration::from_secs(30),
            max_time: Duration::from_secs(300),
            max_percent: 10,
            panic_threshold_percent: 50,
        }
    }
}

impl EjectionPolicy {
    /// Checks the values (`consecutive_failures ≥ 1`, percentages ≤ 100,
    /// `max_time ≥ base_time`).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(format!("ejection policy: {what}")));
        if self.consecutive_failures == 0 {
            return bad("consecutive_failures must be at least 1".into());
        }
        if self.max_percent > 100 {
            return bad(format!("max_percent {} is over 100", self.max_percent));
        }
        if self.panic_threshold_percent > 100 {
            return bad(format!(
                "panic_threshold_percent {} is over 100",
                self.panic_threshold_percent
            ));
        }
        if self.max_time < self.base_time {
            return bad(format!(
                "max_time {:?} is shorter than base_time {:?}",
                self.max_time, self.base_time
            ));
        }
        Ok(())
    }

    /// How long the `nth` ejection (1-based) of a peer lasts: `base_time × nth`, capped.
    pub fn ejection_time(&self, nth: u32) -> Duration {
        self.base_time
            .checked_mul(nth.max(1))
            .map_or(self.max_time, |d| d.min(self.max_time))
    }

    /// How many of `total` peers may be ejected at once: `max_percent` of them, at least 1.
    pub fn max_ejected(&self, total: usize) -> usize {
        (total * self.max_percent as usize / 100).max(1)
    }

    /// Whether `healthy` of `total` enabled peers is below the panic threshold.
    pub fn panics(&self, healthy: usize, total: usize) -> bool {
        total > 0 && healthy * 100 < total * self.panic_threshold_percent as usize
    }

    /// Sets one option by name, as the string forms of the bindings give them:
    /// `failures`, `base_ms`, `max_ms`, `max_percent`, `panic_percent`.
    ///
    /// ```
    /// let mut p = peerlb::ejection::EjectionPolicy::default();
    /// p.set("failures", "3").unwrap();
    /// p.set("base_ms", "100").unwrap();
    /// assert_eq!(p.consecutive_failures, 3);
    /// assert!(p.set("nope", "1").is_err());
    /// ```
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let number = |v: &str| -> Result<u64> {
            v.trim().parse::<u64>().map_err(|_| {
                Error::InvalidArgument(format!(
                    "ejection option {key:?}: {v:?} is not a non-negative integer"
                ))
            })
        };
        let small = |v: &str| -> Result<u32> {
            u32::try_from(number(v)?).map_err(|_| {
                Error::InvalidArgument(format!("ejection option {key:?}: {v:?} is too large"))
            })
        };
        match key {
            "failures" | "consecutive_failures" => self.consecutive_failures = small(value)?,
            "base_ms" => self.base_time = Duration::from_millis(number(value)?),
            "max_ms" => self.max_time = Duration::from_millis(number(value)?),
            "max_percent" => self.max_percent = small(value)?,
            "panic_percent" | "panic_threshold_percent" => {
                self.panic_threshold_percent = small(value)?
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown ejection option {other:?} (known: failures, base_ms, max_ms, \
                     max_percent, panic_percent)"
                )))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_threshold_is_strictly_below() {
        let p = EjectionPolicy::default();
        assert!(!p.panics(2, 4));
        assert!(p.panics(1, 4));
        assert!(!p.panics(0, 0));
        let never = EjectionPolicy {
            panic_threshold_percent: 0,
            ..p
        };
        assert!(!never.panics(0, 4));
    }

    #[test]
    fn validation_names_the_problem() {
        let p = EjectionPolicy {
            consecutive_failures: 0,
            ..Default::default()
        };
        assert!(p.validate().unwrap_err().to_string().contains("at least 1"));
        let p = EjectionPolicy {
            max_time: Duration::from_secs(1),
            ..Default::default()
        };
        assert!(p.validate().is_err());
        assert!(EjectionPolicy::default().validate().is_ok());
    }

    #[test]
    fn ejection_time_saturates() {
        let p = EjectionPolicy {
            base_time: Duration::MAX,
            max_time: Duration::MAX,
            ..Default::default()
        };
        assert_eq!(p.ejection_time(u32::MAX), Duration::MAX);
    }
}
