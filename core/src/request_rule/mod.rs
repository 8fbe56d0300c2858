//! The request rule: how every HTTP integration (Python's httpx transports and requests
//! adapter, Node's undici dispatcher and http agent, the tower layer, C programs through
//! `peerlb_request_call_*`) judges an exchange with a chosen peer, and whether it tries
//! another one.
//!
//! Given a request ([`RequestInfo`]: its method, whether its body can be sent again, an
//! optional idempotency flag) and what happened ([`AttemptResult`]: a status code, or a
//! connect error, reset or timeout), [`RequestRule::judge`] decides:
//!
//! * **the outcome** for the peer: a connect error, a reset, a timeout or any other
//!   transport error is [`Outcome::Failure`]; a status in `failure_statuses` (default
//!   every 5xx) is `Failure`; every other status (2xx, 3xx, 4xx) is [`Outcome::Ok`]: the
//!   peer answered. A user classifier (each integration takes one) may override it with
//!   any outcome (`declined` for a 429, `failure` for a 200 with an error body, ...).
//! * **whether it may be retried on another peer**: only a `Failure`, only when the body
//!   can be sent again, and only when the method is idempotent (`GET`, `HEAD`, `OPTIONS`,
//!   `TRACE`, `PUT`, `DELETE`, as RFC 9110 §9.2.2 and urllib3 say), the request says it is
//!   idempotent, or the rule retries every method (`retry_any_method`). A connect error is
//!   the exception: the request was never sent, so any method may go to another peer
//!   (as urllib3's connect retries and Envoy's `connect-failure` do).
//!
//! [`RequestCall`] then applies the rule to one request, attempt by attempt: it chooses
//! the peer (preferring peers this request has not tried), measures each attempt's
//! latency (from the choice to the report: the time to the response's head, or to the
//! error), finishes the choice with the outcome and latency (so failures count toward
//! ejection and latencies feed `peak-ewma`), and allows a retry only while attempts are
//! left (`max_attempts`, default 3), the overall `timeout` has not passed, and the retry
//! budget (default: Finagle's, 20 % of requests plus 10 per second, one per rule) agrees.
//!
//! ```
//! use peerlb::request_rule::{AttemptResult, RequestInfo, RequestRule};
//! use peerlb::Outcome;
//! let rule = RequestRule::default();
//! let get = RequestInfo::new("GET", true, None);
//! let post = RequestInfo::new("POST", true, None);
//! let v = rule.judge(&get, AttemptResult::Status(503), None);
//! assert_eq!((v.outcome, v.retryable), (Outcome::Failure, true));
//! let v = rule.judge(&post, AttemptResult::Status(503), None);
//! assert_eq!((v.outcome, v.retryable), (Outcome::Failure, false));
//! let v = rule.judge(&post, AttemptResult::ConnectFailed, None);
//! assert!(v.retryable); // never sent
//! let v = rule.judge(&get, AttemptResult::Status(404), None);
//! assert_eq!((v.outcome, v.retryable), (Outcome::Ok, false));
//! let v = rule.judge(&get, AttemptResult::Status(429), Some(Outcome::Declined));
//! assert_eq!((v.outcome, v.retryable), (Outcome::Declined, false));
//! ```
//!
//! The rule is configured once (options, or a spec string such as
//! `"max_attempts=2&timeout_ms=1500&failure_statuses=502-504"` for C) and behaves the
//! same on every surface, since every surface calls this module.

mod call;
mod status_set;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::request::Outcome;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::spec::{ms, parse_ms, split_pairs, unknown_key};

pub use call::{Report, RequestCall, StopReason};
pub use status_set::StatusSet;

/// The methods retried without an explicit opt-in: the idempotent methods of RFC 9110
/// §9.2.2 (the safe `GET`, `HEAD`, `OPTIONS`, `TRACE`, and `PUT`, `DELETE`). Methods are
/// case-sensitive, so `"get"` is not among them.
pub const IDEMPOTENT_METHODS: [&str; 6] = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];

/// The most attempts a rule allows (a typo such as `max_attempts=3000` would otherwise
/// turn one request into a storm the budget has to stop).
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

/// The retry budget of a rule.
#[derive(Clone, Debug)]
pub enum RuleBudget {
    /// A budget of the rule's own with the defaults of [`RetryBudget::standard`] (what
    /// "not given" means): every request made under the rule (and its clones) shares it.
    Default,
    /// No budget: retries are limited by `max_attempts` and `timeout` only.
    Off,
    /// A budget shared with other rules or retried calls.
    Shared(Arc<RetryBudget>),
}

impl PartialEq for RuleBudget {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RuleBudget::Default, RuleBudget::Default) | (RuleBudget::Off, RuleBudget::Off) => true,
            (RuleBudget::Shared(a), RuleBudget::Shared(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The options of a [`RequestRule`]; `None` means the default, so that every surface
/// passes "not given" and the defaults live here only.
///
/// | option | default | spec key |
/// |---|---|---|
/// | `failure_statuses` | every 5xx (`500-599`) | `failure_statuses=502-504,429` |
/// | `max_attempts` | 3 (the first included; 1..=100) | `max_attempts=2` |
/// | `timeout` | none: retries and waits for a peer are bounded by `max_attempts` only | `timeout_ms=1500` |
/// | `budget` | [`RuleBudget::Default`] | `budget=default` / `budget=off` |
/// | `retry_any_method` | false | `retry_any_method=true` |
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestRuleOptions {
    /// The status codes that count as a failure of the peer (and may be retried).
    pub failure_statuses: Option<StatusSet>,
    /// Attempts in all, the first included.
    pub max_attempts: Option<u32>,
    /// The whole request's time limit: no retry starts after it, each wait for a peer ends
    /// by it, and integrations cap each attempt's own timeout by what is left of it.
    pub timeout: Option<Duration>,
    /// The retry budget.
    pub budget: Option<RuleBudget>,
    /// Retry every method, as if all were idempotent (for APIs whose writes are).
    pub retry_any_method: Option<bool>,
}

/// The keys of a rule's spec, in the order the canonical spec lists them.
const KEYS: [&str; 5] = [
    "failure_statuses",
    "max_attempts",
    "timeout_ms",
    "budget",
    "retry_any_method",
];

impl RequestRuleOptions {
    /// Sets one option from its spec form (see the table on [`RequestRuleOptions`]); an
    /// unknown key or a bad value is `invalid-argument` naming it.
    ///
    /// ```
    /// let mut o = peerlb::request_rule::RequestRuleOptions::default();
    /// o.set("max_attempts", "2").unwrap();
    /// assert_eq!(o.max_attempts, Some(2));
    /// assert!(o.set("max_attempts", "0").is_err());
    /// assert!(o.set("retries", "2").is_err());
    /// ```
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "failure_statuses" => self.failure_statuses = Some(value.parse()?),
            "max_attempts" => {
                self.max_attempts = Some(value.parse().map_err(|_| {
                    Error::InvalidArgument(format!(
                        "max_attempts must be an integer in 1..={MAX_ATTEMPTS_LIMIT}, got {value:?}"
                    ))
                })?);
                check_max_attempts(self.max_attempts)?;
            }
            "timeout_ms" => self.timeout = Some(parse_ms(key, value, 0..=86_400_000)?),
            "budget" => {
                self.budget = Some(match value {
                    "default" => RuleBudget::Default,
                    "off" => RuleBudget::Off,
                    other => {
                        return Err(Error::InvalidArgument(format!(
                            "budget must be \"default\" or \"off\", got {other:?} (a shared \
                             budget is passed as an object, not in the spec)"
                        )))
                    }
                })
            }
            "retry_any_method" => {
                self.retry_any_method = Some(match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => {
                        return Err(Error::InvalidArgument(format!(
                            "retry_any_method must be true or false, got {other:?}"
                        )))
                    }
                })
            }
            other => return Err(unknown_key("request rule", other, &KEYS)),
        }
        Ok(())
    }

    /// The canonical spec of the options given (defaults left out; a shared budget shows
    /// as `budget=shared`, which does not parse back).
    pub fn to_spec(&self) -> String {
        let mut pairs = Vec::new();
        if let Some(s) = &self.failure_statuses {
            pairs.push(format!("failure_statuses={s}"));
        }
        if let Some(n) = self.max_attempts {
            pairs.push(format!("max_attempts={n}"));
        }
        if let Some(t) = self.timeout {
            pairs.push(format!("timeout_ms={}", ms(t)));
        }
        match &self.budget {
            None => {}
            Some(RuleBudget::Default) => pairs.push("budget=default".into()),
            Some(RuleBudget::Off) => pairs.push("budget=off".into()),
            Some(RuleBudget::Shared(_)) => pairs.push("budget=shared".into()),
        }
        if let Some(any) = self.retry_any_method {
            pairs.push(format!("retry_any_method={any}"));
        }
        pairs.join("&")
    }
}

impl FromStr for RequestRuleOptions {
    type Err = Error;

    /// `key=value&key=value` (see the table on [`RequestRuleOptions`]); `""` and
    /// `"default"` are the defaults. Every malformation is `invalid-argument` naming the
    /// spec.
    fn from_str(spec: &str) -> Result<RequestRuleOptions> {
        let mut options = RequestRuleOptions::default();
        if spec.is_empty() || spec == "default" {
            return Ok(options);
        }
        let query = spec.strip_prefix("default?").unwrap_or(spec);
        for (key, value) in split_pairs("request rule", spec, query)? {
            options.set(key, value).map_err(|e| match e {
                Error::InvalidArgument(m) => {
                    Error::InvalidArgument(format!("request rule {spec:?}: {m}"))
                }
                other => other,
            })?;
        }
        Ok(options)
    }
}

fn check_max_attempts(n: Option<u32>) -> Result<()> {
    match n {
        Some(n) if n == 0 || n > MAX_ATTEMPTS_LIMIT => Err(Error::InvalidArgument(format!(
            "max_attempts must be an integer in 1..={MAX_ATTEMPTS_LIMIT}, got {n}"
        ))),
        _ => Ok(()),
    }
}

/// The rule every HTTP integration applies (see the [module docs](self)). Cheap to clone;
/// clones share the rule's retry budget.
#[derive(Clone)]
pub struct RequestRule {
    inner: Arc<RuleInner>,
}

struct RuleInner {
    options: RequestRuleOptions,
    failure_statuses: StatusSet,
    retry_any_method: bool,
    policy: RetryPolicy,
}

impl RequestRule {
    /// A rule from options; anything not given takes its default. Out-of-range values
    /// are `invalid-argument`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerlb::request_rule::{RequestRule, RequestRuleOptions, RuleBudget};
    /// let rule = RequestRule::new(&RequestRuleOptions {
    ///     max_attempts: Some(2),
    ///     timeout: Some(Duration::from_millis(1500)),
    ///     budget: Some(RuleBudget::Off),
    ///     ..Default::default()
    /// }).unwrap();
    /// assert_eq!(rule.to_string(), "max_attempts=2&timeout_ms=1500&budget=off");
    /// assert_eq!(rule.max_attempts(), 2);
    /// ```
    pub fn new(options: &RequestRuleOptions) -> Result<RequestRule> {
        check_max_attempts(options.max_attempts)?;
        let mut policy = RetryPolicy::default();
        if let Some(n) = options.max_attempts {
            policy = policy.with_max_attempts(n)?;
        }
        if let Some(t) = options.timeout {
            policy = policy.timeout(t);
        }
        match options.budget.as_ref().unwrap_or(&RuleBudget::Default) {
            RuleBudget::Default => policy = policy.budget(RetryBudget::standard()),
            RuleBudget::Off => {}
            RuleBudget::Shared(b) => policy = policy.budget(b.clone()),
        }
        Ok(RequestRule {
            inner: Arc::new(RuleInner {
                failure_statuses: options.failure_statuses.unwrap_or_default(),
                retry_any_method: options.retry_any_method.unwrap_or(false),
                options: options.clone(),
                policy,
            }),
        })
    }

    /// A rule from a spec string (`"max_attempts=2&budget=off"`; see
    /// [`RequestRuleOptions`]); `budget`, when given, replaces the spec's budget.
    ///
    /// ```
    /// use peerlb::request_rule::RequestRule;
    /// let rule = RequestRule::from_spec("failure_statuses=502-504&max_attempts=2", None).unwrap();
    /// assert_eq!(rule.to_string(), "failure_statuses=502-504&max_attempts=2");
    /// let err = RequestRule::from_spec("max_attempts=0", None).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid argument: request rule \"max_attempts=0\": max_attempts must be an integer in 1..=100, got 0"
    /// );
    /// ```
    pub fn from_spec(spec: &str, budget: Option<Arc<RetryBudget>>) -> Result<RequestRule> {
        let mut options: RequestRuleOptions = spec.parse()?;
        if let Some(b) = budget {
            options.budget = Some(RuleBudget::Shared(b));
        }
        RequestRule::new(&options)
    }

    /// The options the rule was made with (defaults not filled in).
    pub fn options(&self) -> &RequestRuleOptions {
        &self.inner.options
    }

    /// The status codes that count as failures.
    pub fn failure_statuses(&self) -> &StatusSet {
        &self.inner.failure_statuses
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.inner.policy.max_attempts()
    }

    /// Whether every method is retried as if idempotent.
    pub fn retry_any_method(&self) -> bool {
        self.inner.retry_any_method
    }

    /// The retry policy requests under this rule follow.
    pub(crate) fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// The outcome of `result` for the peer, before any classifier: failures are transport
    /// errors and the rule's failure statuses; every other status is `ok`.
    #[inline]
    pub fn outcome_of(&self, result: AttemptResult) -> Outcome {
        match result {
            AttemptResult::Status(code) if !self.inner.failure_statuses.contains(code) => {
                Outcome::Ok
            }
            _ => Outcome::Failure,
        }
    }

    /// Judges one attempt: its outcome (`classified`, when a user classifier gave one,
    /// else [`RequestRule::outcome_of`]) and whether another peer may be tried (see the
    /// [module docs](self)). Attempts left, the timeout and the budget are
    /// [`RequestCall`]'s part.
    #[inline]
    pub fn judge(
        &self,
        request: &RequestInfo,
        result: AttemptResult,
        classified: Option<Outcome>,
    ) -> Verdict {
        let outcome = classified.unwrap_or_else(|| self.outcome_of(result));
        let method_allows = !result.was_sent()
            || (request.resendable && (request.idempotent || self.inner.retry_any_method));
        Verdict {
            outcome,
            retryable: outcome == Outcome::Failure && request.body_replayable && method_allows,
        }
    }
}

impl Default for RequestRule {
    /// Every default (see [`RequestRuleOptions`]), with a budget of its own.
    fn default() -> Self {
        RequestRule::new(&RequestRuleOptions::default()).expect("the defaults are valid")
    }
}

impl fmt::Display for RequestRule {
    /// The canonical spec of the options given (`""` for the defaults).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.options.to_spec())
    }
}

impl fmt::Debug for RequestRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRule")
            .field("spec", &self.inner.options.to_spec())
            .finish()
    }
}

/// Splits a peer id into the host and port an HTTP integration connects to:
/// `"10.0.0.1:8080"`, `"name.internal:80"`, `"[::1]:8080"` (the host without brackets).
/// An id without a port (or with a bad one) is `invalid-argument`: such a list cannot
/// balance HTTP requests.
///
/// ```
/// use peerlb::request_rule::peer_address;
/// assert_eq!(peer_address("10.0.0.1:8080").unwrap(), ("10.0.0.1", 8080));
/// assert_eq!(peer_address("[::1]:443").unwrap(), ("::1", 443));
/// assert!(peer_address("10.0.0.1").is_err());
/// assert!(peer_address("::1").is_err());
/// ```
pub fn peer_address(peer: &str) -> Result<(&str, u16)> {
    let bad = || {
        Error::InvalidArgument(format!(
            "peer {peer:?} is not host:port (an HTTP integration connects to it)"
        ))
    };
    let (host, port) = peer.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((host, port))
}

/// What the rule needs to know of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestInfo {
    idempotent: bool,
    body_replayable: bool,
    resendable: bool,
}

impl RequestInfo {
    /// A request with `method` (case-sensitive, as HTTP methods are), a body that can
    /// (`body_replayable`) or cannot be sent again (a stream already consumed), and an
    /// optional explicit idempotency flag that overrides the method's
    /// ([`IDEMPOTENT_METHODS`]): `Some(true)` for a `POST` with an idempotency key,
    /// `Some(false)` for a `GET` with side effects.
    ///
    /// ```
    /// use peerlb::request_rule::RequestInfo;
    /// assert!(RequestInfo::new("PUT", true, None).idempotent());
    /// assert!(!RequestInfo::new("POST", true, None).idempotent());
    /// assert!(RequestInfo::new("POST", true, Some(true)).idempotent());
    /// assert!(!RequestInfo::new("get", true, None).idempotent());
    /// ```
    pub fn new(method: &str, body_replayable: bool, idempotent: Option<bool>) -> RequestInfo {
        RequestInfo {
            idempotent: idempotent.unwrap_or_else(|| IDEMPOTENT_METHODS.contains(&method)),
            body_replayable,
            resendable: true,
        }
    }

    /// For an integration that cannot send a request again once it was sent (Node's
    /// `http.Agent` hands out connections; the request belongs to the caller): only a
    /// failed connect may move the request to another peer, whatever the rule allows.
    ///
    /// ```
    /// use peerlb::request_rule::{AttemptResult, RequestInfo, RequestRule};
    /// let rule = RequestRule::from_spec("retry_any_method=true", None).unwrap();
    /// let agent = RequestInfo::new("GET", true, None).connect_retries_only();
    /// assert!(!rule.judge(&agent, AttemptResult::Status(503), None).retryable);
    /// assert!(rule.judge(&agent, AttemptResult::ConnectFailed, None).retryable);
    /// ```
    pub fn connect_retries_only(mut self) -> RequestInfo {
        self.resendable = false;
        self
    }

    /// Whether the request may be sent twice.
    pub fn idempotent(&self) -> bool {
        self.idempotent
    }

    /// Whether its body can be sent again.
    pub fn body_replayable(&self) -> bool {
        self.body_replayable
    }
}

/// What happened to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptResult {
    /// The peer answered with this status code (100..=599).
    Status(u16),
    /// The connection could not be made (refused, unreachable, connect timeout): the
    /// request was not sent.
    ConnectFailed,
    /// The connection broke after the request started (reset, closed before a response).
    Reset,
    /// No response within the attempt's timeout.
    TimedOut,
    /// Any other transport error (a protocol error, a TLS failure, ...).
    Failed,
}

impl AttemptResult {
    /// A status result; outside 100..=599 it is `invalid-argument`.
    ///
    /// ```
    /// use peerlb::request_rule::AttemptResult;
    /// assert_eq!(AttemptResult::status(503).unwrap(), AttemptResult::Status(503));
    /// assert!(AttemptResult::status(0).is_err());
    /// ```
    pub fn status(code: u16) -> Result<AttemptResult> {
        if !(100..=599).contains(&code) {
            return Err(Error::InvalidArgument(format!(
                "status {code} is not an HTTP status in 100..=599"
            )));
        }
        Ok(AttemptResult::Status(code))
    }

    /// An error result by name: `"connect-failed"`, `"reset"`, `"timed-out"` or
    /// `"failed"`; anything else is `invalid-argument` (what the bindings call with the
    /// kind they mapped their library's exception to).
    ///
    /// ```
    /// use peerlb::request_rule::AttemptResult;
    /// assert_eq!(AttemptResult::error("reset").unwrap(), AttemptResult::Reset);
    /// assert!(AttemptResult::error("oops").is_err());
    /// ```
    pub fn error(kind: &str) -> Result<AttemptResult> {
        match kind {
            "connect-failed" => Ok(AttemptResult::ConnectFailed),
            "reset" => Ok(AttemptResult::Reset),
            "timed-out" => Ok(AttemptResult::TimedOut),
            "failed" => Ok(AttemptResult::Failed),
            other => Err(Error::InvalidArgument(format!(
                "unknown attempt error {other:?}; expected \"connect-failed\", \"reset\", \
                 \"timed-out\" or \"failed\""
            ))),
        }
    }

    /// Whether the request may have reached the peer (everything but a failed connect).
    #[inline]
    pub fn was_sent(&self) -> bool {
        !matches!(self, AttemptResult::ConnectFailed)
    }
}

impl fmt::Display for AttemptResult {
    /// `HTTP 503`, `connect failed`, `connection reset`, `timed out`, `transport error`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptResult::Status(code) => write!(f, "HTTP {code}"),
            AttemptResult::ConnectFailed => f.write_str("connect failed"),
            AttemptResult::Reset => f.write_str("connection reset"),
            AttemptResult::TimedOut => f.write_str("timed out"),
            AttemptResult::Failed => f.write_str("transport error"),
        }
    }
}

/// The rule's judgement of one attempt (see [`RequestRule::judge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The outcome reported for the peer.
    pub outcome: Outcome,
    /// Whether the request may go to another peer (attempts, timeout and budget aside).
    pub retryable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        let rule = RequestRule::default();
        let get = RequestInfo::new("GET", true, None);
        for (result, outcome) in [
            (AttemptResult::Status(200), Outcome::Ok),
            (AttemptResult::Status(302), Outcome::Ok),
            (AttemptResult::Status(404), Outcome::Ok),
            (AttemptResult::Status(429), Outcome::Ok),
            (AttemptResult::Status(500), Outcome::Failure),
            (AttemptResult::Status(599), Outcome::Failure),
            (AttemptResult::ConnectFailed, Outcome::Failure),
            (AttemptResult::Reset, Outcome::Failure),
            (AttemptResult::TimedOut, Outcome::Failure),
            (AttemptResult::Failed, Outcome::Failure),
        ] {
            let v = rule.judge(&get, result, None);
            assert_eq!(v.outcome, outcome, "{result}");
            assert_eq!(v.retryable, outcome == Outcome::Failure, "{result}");
        }
    }

    #[test]
    fn retry_needs_idempotence_or_no_send_and_a_replayable_body() {
        let rule = RequestRule::default();
        let post = RequestInfo::new("POST", true, None);
        assert!(!rule.judge(&post, AttemptResult::Reset, None).retryable);
        assert!(!rule.judge(&post, AttemptResult::TimedOut, None).retryable);
        assert!(
            rule.judge(&post, AttemptResult::ConnectFailed, None)
                .retryable
        );
        let streamed = RequestInfo::new("GET", false, None);
        assert!(
            !rule
                .judge(&streamed, AttemptResult::ConnectFailed, None)
                .retryable
        );
        let opted_in = RequestInfo::new("POST", true, Some(true));
        assert!(
            rule.judge(&opted_in, AttemptResult::Status(502), None)
                .retryable
        );
        let opted_out = RequestInfo::new("GET", true, Some(false));
        assert!(
            !rule
                .judge(&opted_out, AttemptResult::Status(502), None)
                .retryable
        );
        let any = RequestRule::from_spec("retry_any_method=true", None).unwrap();
        assert!(any.judge(&post, AttemptResult::Reset, None).retryable);
    }

    #[test]
    fn classifier_overrides() {
        let rule = RequestRule::default();
        let get = RequestInfo::new("GET", true, None);
        let v = rule.judge(&get, AttemptResult::Status(200), Some(Outcome::Failure));
        assert_eq!((v.outcome, v.retryable), (Outcome::Failure, true));
        let v = rule.judge(&get, AttemptResult::Status(503), Some(Outcome::Ok));
        assert_eq!((v.outcome, v.retryable), (Outcome::Ok, false));
        let v = rule.judge(&get, AttemptResult::Reset, Some(Outcome::Cancelled));
        assert_eq!((v.outcome, v.retryable), (Outcome::Cancelled, false));
    }

    #[test]
    fn failure_statuses_are_configurable() {
        let rule = RequestRule::from_spec("failure_statuses=502-504,429", None).unwrap();
        assert_eq!(rule.outcome_of(AttemptResult::Status(500)), Outcome::Ok);
        assert_eq!(
            rule.outcome_of(AttemptResult::Status(429)),
            Outcome::Failure
        );
        let none = RequestRule::from_spec("failure_statuses=", None);
        assert!(none.is_err(), "an empty value is a malformed pair");
    }

    #[test]
    fn specs() {
        for spec in [
            "",
            "default",
            "max_attempts=1",
            "timeout_ms=0&budget=off",
            "failure_statuses=500-504&retry_any_method=true",
        ] {
            RequestRule::from_spec(spec, None).unwrap();
        }
        let rule = RequestRule::from_spec("default?max_attempts=5&budget=default", None).unwrap();
        assert_eq!(rule.to_string(), "max_attempts=5&budget=default");
        for bad in [
            "max_attempts=101",
            "max_attempts=-1",
            "timeout_ms=1.5",
            "budget=shared",
            "retry_any_method=yes",
            "failure_statuses=5xx",
            "retries=2",
            "max_attempts=2&max_attempts=3",
            "max_attempts",
        ] {
            let err = RequestRule::from_spec(bad, None).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidArgument, "{bad}");
            assert!(err.to_string().contains("request rule"), "{bad}: {err}");
        }
        let shared = RetryBudget::standard();
        let rule = RequestRule::from_spec("budget=off", Some(shared)).unwrap();
        assert_eq!(rule.to_string(), "budget=shared");
    }
}
