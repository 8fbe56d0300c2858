//! A set of HTTP status codes (100..=599), written as ranges: `"500-599"`, `"502-504,429"`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The lowest status code a set can hold.
const LOWEST: u16 = 100;
/// The highest status code a set can hold.
const HIGHEST: u16 = 599;
/// 64-bit words for the 500 codes.
const WORDS: usize = ((HIGHEST - LOWEST) as usize + 1).div_ceil(64);

/// A set of HTTP status codes in 100..=599: which responses count as a failure of the
/// peer (see [`RequestRule`](super::RequestRule)).
///
/// Written as comma-separated codes and inclusive ranges; [`Display`](fmt::Display) gives
/// the canonical form (ranges merged, ascending), which parses back to the same set.
///
/// ```
/// use peerlb::request_rule::StatusSet;
/// let set: StatusSet = "503,500-502, 504".parse().unwrap();
/// assert!(set.contains(501) && !set.contains(505));
/// assert_eq!(set.to_string(), "500-504");
/// assert_eq!(StatusSet::server_errors().to_string(), "500-599");
/// assert!("499-600".parse::<StatusSet>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusSet {
    bits: [u64; WORDS],
}

impl StatusSet {
    /// No status code.
    pub const fn empty() -> StatusSet {
        StatusSet { bits: [0; WORDS] }
    }

    /// Every 5xx code (500..=599): the default set of failures.
    pub fn server_errors() -> StatusSet {
        let mut set = StatusSet::empty();
        for code in 500..=599 {
            set.bits[Self::slot(code).0] |= 1 << Self::slot(code).1;
        }
        set
    }

    /// The set of `codes`; a code outside 100..=599 is `invalid-argument`.
    ///
    /// ```
    /// use peerlb::request_rule::StatusSet;
    /// let set = StatusSet::from_codes([502, 503, 504]).unwrap();
    /// assert_eq!(set.to_string(), "502-504");
    /// assert!(StatusSet::from_codes([42]).is_err());
    /// ```
    pub fn from_codes(codes: impl IntoIterator<Item = u16>) -> Result<StatusSet> {
        let mut set = StatusSet::empty();
        for code in codes {
            set.insert(code)?;
        }
        Ok(set)
    }

    /// Adds `code`; outside 100..=599 it is `invalid-argument`.
    pub fn insert(&mut self, code: u16) -> Result<()> {
        if !(LOWEST..=HIGHEST).contains(&code) {
            return Err(out_of_range(&code.to_string()));
        }
        let (word, bit) = Self::slot(code);
        self.bits[word] |= 1 << bit;
        Ok(())
    }

    /// Whether `code` is in the set (codes outside 100..=599 never are).
    #[inline]
    pub fn contains(&self, code: u16) -> bool {
        if !(LOWEST..=HIGHEST).contains(&code) {
            return false;
        }
        let (word, bit) = Self::slot(code);
        self.bits[word] & (1 << bit) != 0
    }

    /// Whether the set holds no code.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// The codes in the set, ascending.
    pub fn codes(&self) -> impl Iterator<Item = u16> + '_ {
        (LOWEST..=HIGHEST).filter(|c| self.contains(*c))
    }

    #[inline]
    fn slot(code: u16) -> (usize, u32) {
        let i = (code - LOWEST) as usize;
        (i / 64, (i % 64) as u32)
    }
}

impl Default for StatusSet {
    /// [`StatusSet::server_errors`].
    fn default() -> Self {
        StatusSet::server_errors()
    }
}

fn out_of_range(code: &str) -> Error {
    Error::InvalidArgument(format!(
        "status code {code:?} is not an HTTP status in {LOWEST}..={HIGHEST}"
    ))
}

fn code(text: &str) -> Result<u16> {
    let n: u16 = text.trim().parse().map_err(|_| out_of_range(text.trim()))?;
    if !(LOWEST..=HIGHEST).contains(&n) {
        return Err(out_of_range(text.trim()));
    }
    Ok(n)
}

impl FromStr for StatusSet {
    type Err = Error;

    /// Comma-separated codes and inclusive ranges (`"500-599"`, `"429,502-504"`); spaces
    /// around items are ignored. An empty string is the empty set. Anything else (a code
    /// outside 100..=599, a reversed range, an empty item) is `invalid-argument`.
    fn from_str(s: &str) -> Result<StatusSet> {
        let mut set = StatusSet::empty();
        if s.trim().is_empty() {
            return Ok(set);
        }
        for item in s.split(',') {
            let item = item.trim();
            let (low, high) = match item.split_once('-') {
                Some((a, b)) => (code(a)?, code(b)?),
                None => {
                    let c = code(item)?;
                    (c, c)
                }
            };
            if low > high {
                return Err(Error::InvalidArgument(format!(
                    "status range {item:?} is reversed (write low-high)"
                )));
            }
            for c in low..=high {
                set.insert(c)?;
            }
        }
        Ok(set)
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut code = LOWEST;
        while code <= HIGHEST {
            if !self.contains(code) {
                code += 1;
                continue;
            }
            let start = code;
            while code < HIGHEST && self.contains(code + 1) {
                code += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == code {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{code}")?;
            }
            code += 1;
        }
        Ok(())
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, canonical) in [
            ("500-599", "500-599"),
            ("429, 500 ,502-504", "429,500,502-504"),
            ("100,599", "100,599"),
            ("", ""),
        ] {
            let set: StatusSet = text.parse().unwrap();
            assert_eq!(set.to_string(), canonical);
            assert_eq!(canonical.parse::<StatusSet>().unwrap(), set);
        }
        for bad in [
            "99", "600", "5xx", "504-502", "500,,501", "-", "500-", "1e3",
        ] {
            let err = bad.parse::<StatusSet>().unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn membership() {
        let set = StatusSet::server_errors();
        assert!(set.contains(500) && set.contains(599));
        assert!(!set.contains(499) && !set.contains(600) && !set.contains(0));
        assert_eq!(set.codes().count(), 100);
        assert!(StatusSet::empty().is_empty());
    }
}
