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
//! As a spec string (what the C surface takes; see [`parse`]):
//! `"off"`, `"default"`, or the default policy with changes, `"default?failures=3&base_ms=200"`
//! (the pairs may also come bare, `"failures=3&base_ms=200"`). Keys: `failures`
//! (1..=4294967295), `base_ms`, `max_ms` (whole milliseconds, `max_ms >= base_ms`),
//! `max_percent`, `panic_percent` (0..=100). `Display` gives the canonical spec, which
//! parses back to the same policy.
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

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::spec::{ms, options_from, parse_int, parse_ms, split_pairs, unknown_key, SpecOptions};

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
    /// `failures`, `base_ms`, `max_ms`, `max_percent`, `panic_percent` (the same as
    /// [`SpecOptions::set`], callable without importing the trait).
    ///
    /// ```
    /// let mut p = peerlb::ejection::EjectionPolicy::default();
    /// p.set("failures", "3").unwrap();
    /// p.set("base_ms", "100").unwrap();
    /// assert_eq!(p.consecutive_failures, 3);
    /// assert!(p.set("nope", "1").is_err());
    /// assert!(p.set("max_percent", "101").is_err());
    /// ```
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        SpecOptions::set(self, key, value)
    }
}

/// Parses an ejection setting: `"off"` is `None` (no ejection); anything else is a policy
/// spec (see [`EjectionPolicy`]'s `FromStr`). Every malformation, unknown key and bad
/// value is `invalid-argument` naming the spec.
///
/// ```
/// use std::time::Duration;
/// use peerlb::{ejection, EjectionPolicy};
/// assert_eq!(ejection::parse("off").unwrap(), None);
/// assert_eq!(ejection::parse("default").unwrap(), Some(EjectionPolicy::default()));
/// let p = ejection::parse("failures=3&base_ms=200").unwrap().unwrap();
/// assert_eq!((p.consecutive_failures, p.base_time), (3, Duration::from_millis(200)));
/// assert_eq!(p.to_string(), "default?failures=3&base_ms=200");
/// assert!(ejection::parse("base_ms=5000&max_ms=10").is_err());
/// ```
pub fn parse(spec: &str) -> Result<Option<EjectionPolicy>> {
    match spec {
        "off" => Ok(None),
        _ => spec.parse().map(Some),
    }
}

/// The keys, in the order the canonical spec lists them.
const KEYS: [&str; 5] = [
    "failures",
    "base_ms",
    "max_ms",
    "max_percent",
    "panic_percent",
];

impl SpecOptions for EjectionPolicy {
    const KIND: &'static str = "ejection";
    const NAME: &'static str = "default";

    /// `failures` (also `consecutive_failures`; 1..=4294967295), `base_ms`, `max_ms`
    /// (whole milliseconds), `max_percent`, `panic_percent` (also
    /// `panic_threshold_percent`; 0..=100).
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "failures" | "consecutive_failures" => {
                self.consecutive_failures = parse_int(key, value, 1..=u32::MAX)?
            }
            "base_ms" => self.base_time = parse_ms(key, value, 0..=u64::MAX)?,
            "max_ms" => self.max_time = parse_ms(key, value, 0..=u64::MAX)?,
            "max_percent" => self.max_percent = parse_int(key, value, 0..=100)?,
            "panic_percent" | "panic_threshold_percent" => {
                self.panic_threshold_percent = parse_int(key, value, 0..=100)?
            }
            other => return Err(unknown_key("ejection", other, &KEYS)),
        }
        Ok(())
    }

    /// [`EjectionPolicy::validate`]: `max_ms` is not below `base_ms`, and so on.
    fn validate(&self) -> Result<()> {
        EjectionPolicy::validate(self)
    }

    /// Also takes the pairs bare, without `default?` (as the C surface always has).
    fn from_spec(spec: &str) -> Result<EjectionPolicy> {
        let (head, query) = match spec.split_once('?') {
            Some((head, query)) => (head, Some(query)),
            None if spec.contains('=') => (Self::NAME, Some(spec)),
            None => (spec, None),
        };
        if head != Self::NAME {
            return Err(Error::InvalidArgument(format!(
                "ejection {spec:?}: expected \"off\", \"default\", \"default?key=value&...\" \
                 or key=value pairs"
            )));
        }
        let pairs = match query {
            Some(q) => split_pairs(Self::KIND, spec, q)?,
            None => Vec::new(),
        };
        options_from(spec, None, &pairs)
    }

    fn changed(&self) -> Vec<(&'static str, String)> {
        let d = EjectionPolicy::default();
        let mut pairs = Vec::new();
        if self.consecutive_failures != d.consecutive_failures {
            pairs.push((KEYS[0], self.consecutive_failures.to_string()));
        }
        if self.base_time != d.base_time {
            pairs.push((KEYS[1], ms(self.base_time)));
        }
        if self.max_time != d.max_time {
            pairs.push((KEYS[2], ms(self.max_time)));
        }
        if self.max_percent != d.max_percent {
            pairs.push((KEYS[3], self.max_percent.to_string()));
        }
        if self.panic_threshold_percent != d.panic_threshold_percent {
            pairs.push((KEYS[4], self.panic_threshold_percent.to_string()));
        }
        pairs
    }
}

impl FromStr for EjectionPolicy {
    type Err = Error;
    /// Parses `default`, `default?key=value&...`, or bare `key=value&...` pairs (the
    /// default policy with those changes); see the [module docs](self). `"off"` is not a
    /// policy: [`parse`] reads it as no ejection.
    fn from_str(spec: &str) -> Result<EjectionPolicy> {
        <EjectionPolicy as SpecOptions>::from_spec(spec)
    }
}

impl fmt::Display for EjectionPolicy {
    /// The canonical spec: `default`, or `default?` with the keys that differ from the
    /// default policy (durations in whole milliseconds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_spec())
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
    fn specs() {
        assert_eq!(parse("off").unwrap(), None);
        assert_eq!(parse("default").unwrap(), Some(EjectionPolicy::default()));
        let p = parse("failures=3&base_ms=200&max_ms=1000")
            .unwrap()
            .unwrap();
        assert_eq!(p.consecutive_failures, 3);
        assert_eq!(p.base_time, Duration::from_millis(200));
        assert_eq!(p.max_time, Duration::from_secs(1));
        assert_eq!(p.to_string(), "default?failures=3&base_ms=200&max_ms=1000");
        assert_eq!(parse(&p.to_string()).unwrap(), Some(p));
        let p: EjectionPolicy = "default?consecutive_failures=2&panic_threshold_percent=0"
            .parse()
            .unwrap();
        assert_eq!(p.to_string(), "default?failures=2&panic_percent=0");
        for bad in [
            "",
            "on",
            "off?failures=1",
            "failures",
            "failures=",
            "=3",
            "failures=3&",
            "default?",
            "failures=3&failures=4",
            "nope=1",
            "failures=0",
            "failures=4294967296",
            "max_percent=101",
            "base_ms=5000&max_ms=10",
            "failures=-1",
            "failures= 3",
            "default?failures=1?x",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidArgument, "{bad:?}");
            assert!(
                err.to_string().contains(&format!("ejection {bad:?}")),
                "{err}"
            );
        }
        let err = parse("max_percent=101").unwrap_err().to_string();
        assert!(
            err.contains("max_percent must be an integer in 0..=100"),
            "{err}"
        );
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
