//! Spec strings: options that ride in one string, `name[:mode][?key=value&key=value]`, so
//! C, Python and Node can pass a strategy, a transport or an ejection policy as text.
//!
//! One trait, [`SpecOptions`], is implemented by every option type that has a spec
//! (`hash-ring`, `maglev`, `weighted-round-robin`, `peak-ewma`, `tcp-probe`, ejection), and
//! one parser applies a spec's pairs to it. The value parsers here (whole milliseconds,
//! bounded integers, bounded floats, `all` or a number) give every option the same error
//! messages: they name the key and the accepted range, and the parser adds the spec.
//!
//! The canonical spec of a value ([`SpecOptions::to_spec`], which each type's `Display`
//! gives) leaves defaults out, shows a mode only when it is not the default, and parses
//! back to the same value.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

/// Options that ride in a spec string, `name[:mode][?key=value&...]`.
///
/// Implementors say what their name is, how a mode and one `key=value` change them, and
/// which of their options differ from the defaults; [`SpecOptions::from_spec`] and
/// [`SpecOptions::to_spec`] do the rest, the same way for every type.
///
/// ```
/// use peerlb::strategy::SpecOptions;
/// use peerlb::strategy::hash_ring::HashRingOptions;
/// use peerlb::TcpProbeOptions;
///
/// let mut ring = HashRingOptions::fast();
/// ring.set("bounded", "1.25").unwrap();
/// assert_eq!(ring.to_spec(), "hash-ring:fast?bounded=1.25");
/// assert_eq!(HashRingOptions::from_spec("hash-ring:fast?bounded=1.25").unwrap(), ring);
///
/// let probe = TcpProbeOptions::from_spec("tcp-probe?timeout_ms=100").unwrap();
/// assert_eq!(probe.to_spec(), "tcp-probe?timeout_ms=100");
/// let err = TcpProbeOptions::from_spec("tcp-probe?timeout_ms=0").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid argument: transport \"tcp-probe?timeout_ms=0\": timeout_ms must be a whole \
///      number of milliseconds in 1..=86400000, got \"0\""
/// );
/// ```
pub trait SpecOptions: Sized + Default {
    /// What kind of spec this is, for messages: `"strategy"`, `"transport"`, `"ejection"`.
    const KIND: &'static str;
    /// The name a spec of these options starts with, e.g. `"hash-ring"`.
    const NAME: &'static str;

    /// The options of `mode` (`name:mode`) with their defaults; `None` is the default
    /// mode. The default implementation knows no modes: any mode is `invalid-argument`.
    fn for_mode(mode: Option<&str>) -> Result<Self> {
        match mode {
            None => Ok(Self::default()),
            Some(m) => Err(no_modes(Self::NAME, m)),
        }
    }

    /// Sets one option by its key. An unknown key or a bad value is `invalid-argument`
    /// naming the key and what it accepts (see [`unknown_key`]).
    fn set(&mut self, key: &str, value: &str) -> Result<()>;

    /// Checks rules between options once every key is set (e.g. a maximum not below a
    /// minimum). The default accepts everything.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// The mode to show in the canonical spec: `None` for the default mode.
    fn mode(&self) -> Option<&'static str> {
        None
    }

    /// The options that differ from their defaults (of this mode), as `key=value` pairs in
    /// the order the canonical spec lists them.
    fn changed(&self) -> Vec<(&'static str, String)>;

    /// Parses a spec of these options (`NAME[:mode][?key=value&...]`); every malformation,
    /// unknown mode or key and bad value is `invalid-argument` naming the spec.
    fn from_spec(spec: &str) -> Result<Self> {
        let (head, params) = split_spec(Self::KIND, spec)?;
        let (name, mode) = split_mode(head);
        if name != Self::NAME {
            return Err(Error::InvalidArgument(format!(
                "{} {spec:?}: expected {}",
                Self::KIND,
                Self::NAME
            )));
        }
        options_from(spec, mode, &params)
    }

    /// The canonical spec: defaults left out, the mode shown when it is not the default.
    /// It parses back ([`SpecOptions::from_spec`]) to the same options.
    fn to_spec(&self) -> String {
        let mut spec = String::from(Self::NAME);
        if let Some(mode) = self.mode() {
            spec.push(':');
            spec.push_str(mode);
        }
        for (i, (key, value)) in self.changed().into_iter().enumerate() {
            spec.push(if i == 0 { '?' } else { '&' });
            spec.push_str(key);
            spec.push('=');
            spec.push_str(&value);
        }
        spec
    }
}

/// Builds `O` from a spec already split into mode and pairs; errors name `spec`.
pub(crate) fn options_from<O: SpecOptions>(
    spec: &str,
    mode: Option<&str>,
    params: &[(&str, &str)],
) -> Result<O> {
    let within = |e: Error| match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{} {spec:?}: {m}", O::KIND)),
        other => other,
    };
    let mut options = O::for_mode(mode).map_err(within)?;
    for (key, value) in params {
        options.set(key, value).map_err(within)?;
    }
    options.validate().map_err(within)?;
    Ok(options)
}

/// `name:mode` → (`name`, `Some(mode)`); `name` → (`name`, `None`).
pub(crate) fn split_mode(head: &str) -> (&str, Option<&str>) {
    match head.split_once(':') {
        Some((name, mode)) => (name, Some(mode)),
        None => (head, None),
    }
}

/// The error for a mode on options without modes.
pub fn no_modes(name: &str, mode: &str) -> Error {
    Error::InvalidArgument(format!("{name} has no modes, got {mode:?}"))
}

/// The error for a key the options do not have, listing the ones they do.
///
/// ```
/// let err = peerlb::strategy::unknown_key("maglev", "bounded", &["table"]);
/// assert_eq!(err.to_string(), "invalid argument: maglev has no option \"bounded\"; expected table");
/// ```
pub fn unknown_key(name: &str, key: &str, known: &[&str]) -> Error {
    Error::InvalidArgument(format!(
        "{name} has no option {key:?}; expected {}",
        known.join(", ")
    ))
}

/// Splits `spec` into the part before `?` and its `key=value` pairs, which must be
/// non-empty and distinct. `what` names the kind of spec in error messages (`"strategy"`,
/// `"transport"`); every malformation is `invalid-argument`.
pub(crate) fn split_spec<'a>(
    what: &str,
    spec: &'a str,
) -> Result<(&'a str, Vec<(&'a str, &'a str)>)> {
    match spec.split_once('?') {
        Some((head, query)) => Ok((head, split_pairs(what, spec, query)?)),
        None => Ok((spec, Vec::new())),
    }
}

/// Splits `query` (`key=value&key=value`, the part of `spec` after `?`) into its pairs,
/// which must be non-empty and distinct; errors name `what` and `spec`.
pub(crate) fn split_pairs<'a>(
    what: &str,
    spec: &str,
    query: &'a str,
) -> Result<Vec<(&'a str, &'a str)>> {
    let bad = |why: String| Error::InvalidArgument(format!("{what} {spec:?}: {why}"));
    let mut params: Vec<(&str, &str)> = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("expected key=value, got {pair:?}")))?;
        if k.is_empty() || v.is_empty() {
            return Err(bad(format!("expected key=value, got {pair:?}")));
        }
        if params.iter().any(|(seen, _)| *seen == k) {
            return Err(bad(format!("option {k} given twice")));
        }
        params.push((k, v));
    }
    Ok(params)
}

/// A whole number of milliseconds in `range`, e.g. `interval_ms=200`.
///
/// ```
/// use std::time::Duration;
/// use peerlb::strategy::parse_ms;
/// assert_eq!(parse_ms("decay_ms", "1500", 1..=60_000).unwrap(), Duration::from_millis(1500));
/// let err = parse_ms("decay_ms", "0", 1..=60_000).unwrap_err();
/// assert!(err.to_string().contains("decay_ms must be a whole number of milliseconds in 1..=60000"));
/// ```
pub fn parse_ms(key: &str, value: &str, range: RangeInclusive<u64>) -> Result<Duration> {
    match value.parse::<u64>() {
        Ok(ms) if range.contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(Error::InvalidArgument(format!(
            "{key} must be a whole number of milliseconds in {}..={}, got {value:?}",
            range.start(),
            range.end()
        ))),
    }
}

/// An integer in `range`, e.g. `vnodes=160`.
///
/// ```
/// use peerlb::strategy::parse_int;
/// assert_eq!(parse_int::<u32>("vnodes", "160", 1..=10_000).unwrap(), 160);
/// assert!(parse_int::<u32>("vnodes", "-1", 1..=10_000).is_err());
/// assert!(parse_int::<u32>("vnodes", "1.5", 1..=10_000).is_err());
/// ```
pub fn parse_int<T>(key: &str, value: &str, range: RangeInclusive<T>) -> Result<T>
where
    T: FromStr + PartialOrd + fmt::Display,
{
    match value.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(Error::InvalidArgument(format!(
            "{key} must be an integer in {}..={}, got {value:?}",
            range.start(),
            range.end()
        ))),
    }
}

/// A finite number in `range`, e.g. `bounded=1.25` (`nan` and `inf` are never in range).
///
/// ```
/// use peerlb::strategy::parse_float;
/// assert_eq!(parse_float("bounded", "1.25", 1.0..=100.0).unwrap(), 1.25);
/// assert!(parse_float("bounded", "nan", 1.0..=100.0).is_err());
/// ```
pub fn parse_float(key: &str, value: &str, range: RangeInclusive<f64>) -> Result<f64> {
    match value.parse::<f64>() {
        Ok(x) if range.contains(&x) => Ok(x),
        _ => Err(Error::InvalidArgument(format!(
            "{key} must be a number in {}..={}, got {value:?}",
            range.start(),
            range.end()
        ))),
    }
}

/// `all` (`None`) or an integer in `range` (`Some(n)`), e.g. `choices=all`, `choices=3`.
///
/// ```
/// use peerlb::strategy::parse_all_or_int;
/// assert_eq!(parse_all_or_int::<usize>("choices", "all", 2..=1024).unwrap(), None);
/// assert_eq!(parse_all_or_int::<usize>("choices", "3", 2..=1024).unwrap(), Some(3));
/// assert!(parse_all_or_int::<usize>("choices", "1", 2..=1024).is_err());
/// ```
pub fn parse_all_or_int<T>(key: &str, value: &str, range: RangeInclusive<T>) -> Result<Option<T>>
where
    T: FromStr + PartialOrd + fmt::Display,
{
    if value == "all" {
        return Ok(None);
    }
    match value.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(Error::InvalidArgument(format!(
            "{key} must be \"all\" or an integer in {}..={}, got {value:?}",
            range.start(),
            range.end()
        ))),
    }
}

/// A duration as a spec shows it: whole milliseconds (a sub-millisecond part is dropped;
/// values that came from a spec have none).
pub(crate) fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_rejects() {
        let (head, params) = split_spec("strategy", "hash-ring:fast?vnodes=7&bounded=2").unwrap();
        assert_eq!(head, "hash-ring:fast");
        assert_eq!(params, [("vnodes", "7"), ("bounded", "2")]);
        assert_eq!(
            split_spec("transport", "tcp-probe").unwrap(),
            ("tcp-probe", vec![])
        );
        for bad in ["x?", "x?a", "x?a=", "x?=1", "x?a=1&a=2", "x?a=1&"] {
            let err = split_spec("transport", bad).unwrap_err();
            assert!(err.to_string().contains("transport"), "{bad}: {err}");
        }
    }

    #[test]
    fn value_parsers_name_key_and_range() {
        let err = parse_int::<u32>("n", "x", 1..=5).unwrap_err().to_string();
        assert!(
            err.contains("n must be an integer in 1..=5, got \"x\""),
            "{err}"
        );
        let err = parse_float("f", "inf", 1.0..=2.5).unwrap_err().to_string();
        assert!(
            err.contains("f must be a number in 1..=2.5, got \"inf\""),
            "{err}"
        );
        let err = parse_ms("t_ms", "-1", 0..=9).unwrap_err().to_string();
        assert!(err.contains("t_ms must be a whole number of milliseconds in 0..=9"));
        let err = parse_all_or_int::<u8>("c", "some", 2..=9)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c must be \"all\" or an integer in 2..=9"),
            "{err}"
        );
        assert_eq!(
            parse_ms("t_ms", "18446744073709551615", 0..=u64::MAX).unwrap(),
            Duration::from_millis(u64::MAX)
        );
        assert!(parse_ms("t_ms", "18446744073709551616", 0..=u64::MAX).is_err());
    }
}
