//! Server-reported load: what a backend says about itself in a response, handed to
//! [`Choice::finish_with_load`](crate::Choice::finish_with_load).
//!
//! A [`LoadReport`] carries up to four numbers, each optional: requests in flight, a
//! utilization, queries per second and errors per second. Strategies that use them read
//! what they need (`weighted-round-robin:orca` the last three, `prequal` the in-flight
//! count); the others ignore reports.
//!
//! Backends usually send it in a response header, `endpoint-load-metrics`, in the text form
//! of ORCA (Open Request Cost Aggregation, as Envoy and gRPC read it):
//!
//! ```text
//! endpoint-load-metrics: TEXT cpu_utilization=0.3, rps_fractional=120, eps=1.5, named_metrics.rif=7
//! ```
//!
//! [`LoadReport::from_orca`] (also `str::parse`) reads that value:
//!
//! | ORCA field | report field |
//! |---|---|
//! | `application_utilization` (when > 0), else `cpu_utilization` | `utilization` (as gRPC's weighted round-robin picks it) |
//! | `rps_fractional` | `qps` |
//! | `eps` | `eps` |
//! | `named_metrics.rif` or `named_metrics.requests_in_flight` (ORCA has no field of its own for it) | `requests_in_flight` |
//!
//! Other fields (`mem_utilization`, other `named_metrics.*`, `utilization.*`,
//! `request_cost.*`) are accepted and ignored. Keys and values are separated by `=` or `:`
//! (Envoy reads both), pairs by commas; the `TEXT ` prefix may be left out. A value that
//! is not a finite number ≥ 0, a repeated or empty key, an unknown field, or the `JSON` and
//! `BIN` forms (not supported) are `invalid-argument`.
//!
//! ```
//! use peerlb::LoadReport;
//! let r: LoadReport = "TEXT cpu_utilization=0.5, application_utilization=0.25, rps_fractional=200, eps=2, named_metrics.rif=3"
//!     .parse()
//!     .unwrap();
//! assert_eq!(r.utilization, Some(0.25));
//! assert_eq!(r.qps, Some(200.0));
//! assert_eq!(r.eps, Some(2.0));
//! assert_eq!(r.requests_in_flight, Some(3));
//! assert!("TEXT cpu_utilization=-1".parse::<LoadReport>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The most requests in flight a report may claim (a larger count is `invalid-argument`).
pub const MAX_REPORTED_IN_FLIGHT: u64 = u32::MAX as u64;

/// The longest ORCA text [`LoadReport::from_orca`] reads (a header value; longer is
/// `invalid-argument`).
pub const MAX_ORCA_TEXT_LEN: usize = 8192;

/// What a backend reported about its load with one response (see the [module docs](self)).
/// Every field is optional; [`LoadReport::default`] reports nothing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadReport {
    /// Requests the backend had in flight (from every client), when it answered.
    pub requests_in_flight: Option<u32>,
    /// Its utilization as a fraction of its capacity (≥ 0; may exceed 1 under overload),
    /// e.g. CPU utilization.
    pub utilization: Option<f64>,
    /// Queries per second it is serving (≥ 0).
    pub qps: Option<f64>,
    /// Errors per second it is returning (≥ 0).
    pub eps: Option<f64>,
}

impl LoadReport {
    /// A report of requests in flight only.
    ///
    /// ```
    /// let r = peerlb::LoadReport::in_flight(4);
    /// assert_eq!(r.requests_in_flight, Some(4));
    /// assert_eq!(r.qps, None);
    /// ```
    pub fn in_flight(requests: u32) -> LoadReport {
        LoadReport {
            requests_in_flight: Some(requests),
            ..LoadReport::default()
        }
    }

    /// Whether it reports nothing.
    pub fn is_empty(&self) -> bool {
        *self == LoadReport::default()
    }

    /// Checks that every number given is finite and ≥ 0 (`invalid-argument` naming the
    /// field otherwise). The bindings build reports from foreign numbers and call this.
    ///
    /// ```
    /// use peerlb::LoadReport;
    /// let bad = LoadReport { qps: Some(f64::NAN), ..LoadReport::default() };
    /// assert_eq!(bad.validate().unwrap_err().code(), peerlb::ErrorCode::InvalidArgument);
    /// assert!(LoadReport::in_flight(3).validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("utilization", self.utilization),
            ("qps", self.qps),
            ("eps", self.eps),
        ] {
            if let Some(v) = value {
                check_number(name, v)?;
            }
        }
        Ok(())
    }

    /// A report from an in-flight count given as a float (as C, Python and Node hand
    /// numbers over): a whole number in 0..=[`MAX_REPORTED_IN_FLIGHT`], or
    /// `invalid-argument`.
    ///
    /// ```
    /// use peerlb::LoadReport;
    /// assert_eq!(LoadReport::in_flight_from_f64(7.0).unwrap(), 7);
    /// assert!(LoadReport::in_flight_from_f64(1.5).is_err());
    /// assert!(LoadReport::in_flight_from_f64(-1.0).is_err());
    /// ```
    pub fn in_flight_from_f64(value: f64) -> Result<u32> {
        if value.is_finite()
            && value >= 0.0
            && value.fract() == 0.0
            && value <= MAX_REPORTED_IN_FLIGHT as f64
        {
            Ok(value as u32)
        } else {
            Err(Error::InvalidArgument(format!(
                "load report: requests_in_flight must be a whole number in 0..={MAX_REPORTED_IN_FLIGHT}, got {value}"
            )))
        }
    }

    /// Parses the value of an `endpoint-load-metrics` header in ORCA's text form (see the
    /// [module docs](self) for the fields read).
    ///
    /// ```
    /// use peerlb::LoadReport;
    /// let r = LoadReport::from_orca("TEXT cpu_utilization=0.8, rps_fractional=10").unwrap();
    /// assert_eq!((r.utilization, r.qps, r.eps), (Some(0.8), Some(10.0), None));
    /// // application_utilization wins over cpu_utilization when it is above 0 (as in gRPC).
    /// let r = LoadReport::from_orca("cpu_utilization:0.8,application_utilization:0.4").unwrap();
    /// assert_eq!(r.utilization, Some(0.4));
    /// assert!(LoadReport::from_orca("JSON {\"cpu_utilization\": 1}").is_err());
    /// assert!(LoadReport::from_orca("TEXT eps=1, eps=2").is_err());
    /// ```
    pub fn from_orca(text: &str) -> Result<LoadReport> {
        let bad = |m: String| Error::InvalidArgument(format!("load report {text:?}: {m}"));
        if text.len() > MAX_ORCA_TEXT_LEN {
            return Err(Error::InvalidArgument(format!(
                "load report is {} bytes long; the limit is {MAX_ORCA_TEXT_LEN}",
                text.len()
            )));
        }
        let body = text.trim();
        let body = match body.split_once(' ') {
            _ if body == "TEXT" => "",
            Some(("TEXT", rest)) => rest,
            Some((format @ ("JSON" | "BIN"), _)) => {
                return Err(bad(format!(
                    "the {format} form is not supported; send the TEXT form"
                )))
            }
            _ => body,
        };
        let mut seen: Vec<&str> = Vec::new();
        let (mut cpu, mut application) = (None, None);
        let mut report = LoadReport::default();
        for pair in body.split(',') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair
                .split_once(['=', ':'])
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| bad(format!("{pair:?} is not key=value")))?;
            if key.is_empty() {
                return Err(bad("a key is empty".into()));
            }
            if seen.contains(&key) {
                return Err(bad(format!("{key} appears twice")));
            }
            seen.push(key);
            let number: f64 = value
                .parse()
                .map_err(|_| bad(format!("{key}: {value:?} is not a number")))?;
            check_number(key, number).map_err(|e| match e {
                Error::InvalidArgument(m) => bad(m),
                other => other,
            })?;
            match key {
                "cpu_utilization" => cpu = Some(number),
                "application_utilization" => application = Some(number),
                "rps_fractional" => report.qps = Some(number),
                "eps" => report.eps = Some(number),
                "named_metrics.rif" | "named_metrics.requests_in_flight" => {
                    report.requests_in_flight =
                        Some(LoadReport::in_flight_from_f64(number).map_err(|e| match e {
                            Error::InvalidArgument(m) => bad(m),
                            other => other,
                        })?)
                }
                "mem_utilization" => {}
                k if k.starts_with("named_metrics.")
                    || k.starts_with("utilization.")
                    || k.starts_with("request_cost.") => {}
                other => return Err(bad(format!("unknown field {other:?}"))),
            }
        }
        report.utilization = match (application, cpu) {
            (Some(a), _) if a > 0.0 => Some(a),
            (_, Some(c)) => Some(c),
            (a, None) => a,
        };
        Ok(report)
    }
}

fn check_number(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "load report: {name} must be a finite number >= 0, got {value}"
        )))
    }
}

impl FromStr for LoadReport {
    type Err = Error;
    /// [`LoadReport::from_orca`].
    fn from_str(s: &str) -> Result<LoadReport> {
        LoadReport::from_orca(s)
    }
}

impl fmt::Display for LoadReport {
    /// The ORCA text form of what it reports (parses back to the same report), e.g.
    /// `TEXT application_utilization=0.5, rps_fractional=100, named_metrics.rif=4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TEXT")?;
        let mut sep = " ";
        let mut field = |f: &mut fmt::Formatter<'_>, key: &str, value: String| {
            let r = write!(f, "{sep}{key}={value}");
            sep = ", ";
            r
        };
        if let Some(u) = self.utilization {
            // cpu_utilization reads back as given, also when it is 0.
            field(f, "cpu_utilization", u.to_string())?;
        }
        if let Some(q) = self.qps {
            field(f, "rps_fractional", q.to_string())?;
        }
        if let Some(e) = self.eps {
            field(f, "eps", e.to_string())?;
        }
        if let Some(r) = self.requests_in_flight {
            field(f, "named_metrics.rif", r.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_field_and_both_separators() {
        let r = LoadReport::from_orca(
            "TEXT cpu_utilization=0.7,application_utilization=0.8,mem_utilization=0.9,\
             rps_fractional=1000,eps=2,named_metrics.foo=123,named_metrics.rif=12,utilization.total=0.5",
        )
        .unwrap();
        assert_eq!(
            r,
            LoadReport {
                requests_in_flight: Some(12),
                utilization: Some(0.8),
                qps: Some(1000.0),
                eps: Some(2.0),
            }
        );
        let colon =
            LoadReport::from_orca("TEXT cpu_utilization:0.7, rps_fractional:5, eps:0").unwrap();
        assert_eq!(colon.utilization, Some(0.7));
        assert_eq!(colon.qps, Some(5.0));
        assert_eq!(colon.eps, Some(0.0));
        // application_utilization of 0 falls back to cpu (gRPC's rule).
        let r = LoadReport::from_orca("application_utilization=0, cpu_utilization=0.3").unwrap();
        assert_eq!(r.utilization, Some(0.3));
        let r = LoadReport::from_orca("named_metrics.requests_in_flight=4").unwrap();
        assert_eq!(r, LoadReport::in_flight(4));
        assert!(LoadReport::from_orca("").unwrap().is_empty());
        assert!(LoadReport::from_orca("TEXT ").unwrap().is_empty());
    }

    #[test]
    fn bad_reports_are_invalid_argument() {
        for text in [
            "TEXT cpu_utilization=-0.1",
            "TEXT cpu_utilization=nan",
            "TEXT rps_fractional=inf",
            "TEXT eps=abc",
            "TEXT eps=",
            "TEXT =1",
            "TEXT eps",
            "TEXT eps=1,eps=1",
            "TEXT colour=1",
            "TEXT named_metrics.rif=1.5",
            "TEXT named_metrics.rif=5000000000",
            "JSON {}",
            "BIN AAAA",
        ] {
            let err = LoadReport::from_orca(text).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidArgument, "{text}");
            assert!(err.to_string().contains("load report"), "{err}");
        }
        let long = format!("TEXT eps=1{}", " ".repeat(MAX_ORCA_TEXT_LEN));
        assert!(LoadReport::from_orca(&long).is_err());
    }

    #[test]
    fn display_parses_back() {
        for r in [
            LoadReport::default(),
            LoadReport::in_flight(9),
            LoadReport {
                requests_in_flight: Some(0),
                utilization: Some(0.0),
                qps: Some(12.5),
                eps: Some(0.25),
            },
        ] {
            assert_eq!(r.to_string().parse::<LoadReport>().unwrap(), r, "{r}");
        }
    }
}
