//! What a caller asks for (`Request`) and how a request went (`Outcome`).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// One `choose` call's parameters: an optional deadline and an optional shard key.
///
/// ```
/// use std::time::Duration;
/// use peerlb::Request;
/// let r = Request::new().with_timeout(Duration::from_millis(50)).with_shard_key(b"user-7");
/// assert!(r.deadline().is_some());
/// assert_eq!(r.shard_key(), Some(&b"user-7"[..]));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    deadline: Option<Instant>,
    shard_key: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    /// No deadline, no shard key.
    #[inline]
    pub fn new() -> Request<'a> {
        Request::default()
    }

    /// Wait at most until `deadline` for an available peer.
    #[inline]
    pub fn with_deadline(mut self, deadline: Instant) -> Request<'a> {
        self.deadline = Some(deadline);
        self
    }

    /// Wait at most `timeout` from now for an available peer.
    #[inline]
    pub fn with_timeout(self, timeout: Duration) -> Request<'a> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365 * 30));
        self.with_deadline(deadline)
    }

    /// The key hash-based strategies map to a peer (others ignore it).
    #[inline]
    pub fn with_shard_key(mut self, key: &'a [u8]) -> Request<'a> {
        self.shard_key = Some(key);
        self
    }

    /// The deadline, if any.
    #[inline]
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The shard key, if any.
    #[inline]
    pub fn shard_key(&self) -> Option<&'a [u8]> {
        self.shard_key
    }
}

/// How a request to a chosen peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Outcome {
    /// It succeeded.
    #[default]
    Ok = 0,
    /// It failed in a way that counts against the peer (toward ejection; retry may pick
    /// another peer).
    Failure = 1,
    /// The peer refused on purpose (overload, shedding): no retry, no ejection.
    Declined = 2,
    /// The caller gave up (or dropped the choice unfinished).
    Cancelled = 3,
}

impl Outcome {
    /// `"ok"`, `"failure"`, `"declined"` or `"cancelled"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failure => "failure",
            Outcome::Declined => "declined",
            Outcome::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = Error;
    fn from_str(s: &str) -> Result<Outcome> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "failure" => Ok(Outcome::Failure),
            "declined" => Ok(Outcome::Declined),
            "cancelled" => Ok(Outcome::Cancelled),
            other => Err(Error::InvalidArgument(format!(
                "unknown outcome {other:?}; expected \"ok\", \"failure\", \"declined\" or \"cancelled\""
            ))),
        }
    }
}
