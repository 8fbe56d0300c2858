//! [`RequestCall`]: one HTTP request under a [`RequestRule`], attempt by attempt.

use std::time::{Duration, Instant};

use super::{AttemptResult, RequestInfo, RequestRule};
use crate::choice::Choice;
use crate::error::{Error, ErrorCode, Result};
use crate::list::PeerList;
use crate::now_or_later::{Later, NowOrLater};
use crate::request::{Outcome, Request};
use crate::retry::Retry;

/// Why a failed attempt was not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The rule does not retry it: a method that is not idempotent (and the request was
    /// sent), or a body that cannot be sent again.
    NotRetryable,
    /// `max_attempts` attempts were made.
    AttemptsExhausted,
    /// The retry budget refused another attempt.
    BudgetExhausted,
    /// The rule's overall `timeout` passed.
    TimedOut,
}

impl StopReason {
    /// `"not-retryable"`, `"attempts-exhausted"`, `"budget-exhausted"`, `"timed-out"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::NotRetryable => "not-retryable",
            StopReason::AttemptsExhausted => "attempts-exhausted",
            StopReason::BudgetExhausted => "budget-exhausted",
            StopReason::TimedOut => "timed-out",
        }
    }
}

/// What [`RequestCall::report`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The outcome the attempt's choice was finished with.
    pub outcome: Outcome,
    /// The latency reported with it: from the choice to the report.
    pub latency: Duration,
    /// Whether to choose again and send the request to another peer. When `false`, the
    /// attempt's response (or error) is the request's.
    pub retry: bool,
    /// Why a failed attempt is not retried (`None` when `retry`, or when the outcome is
    /// not a failure).
    pub stopped: Option<StopReason>,
}

/// One HTTP request sent under a [`RequestRule`], attempt by attempt: [`choose`] a peer,
/// send, [`report`] what happened; repeat while the report says `retry`.
///
/// ```
/// use peerlb::{ListOptions, Outcome, PeerList, Request};
/// use peerlb::request_rule::{AttemptResult, RequestCall, RequestInfo, RequestRule};
///
/// let list = PeerList::new(ListOptions::default().shuffle(false)).unwrap();
/// list.update(["10.0.0.1:80", "10.0.0.2:80"], None::<&str>).unwrap();
/// list.start().unwrap();
/// let rule = RequestRule::default();
/// let mut call = RequestCall::new(&rule, RequestInfo::new("GET", true, None));
/// let first = call.choose(&list, &Request::new()).unwrap();
/// assert_eq!(first.peer().as_str(), "10.0.0.1:80");
/// // ... the peer answered 503 ...
/// let report = call.report(first, AttemptResult::Status(503), None);
/// assert!(report.retry);
/// let second = call.choose(&list, &Request::new()).unwrap();
/// assert_eq!(second.peer().as_str(), "10.0.0.2:80"); // another peer
/// let report = call.report(second, AttemptResult::Status(200), None);
/// assert_eq!((report.outcome, report.retry), (Outcome::Ok, false));
/// ```
///
/// [`choose`]: RequestCall::choose
/// [`report`]: RequestCall::report
#[derive(Debug)]
pub struct RequestCall {
    rule: RequestRule,
    info: RequestInfo,
    retry: Retry,
    /// When the current attempt's peer was chosen.
    attempt_started: Instant,
}

impl RequestCall {
    /// Starts a request (the rule's `timeout` counts from now).
    pub fn new(rule: &RequestRule, info: RequestInfo) -> RequestCall {
        RequestCall {
            retry: Retry::new(rule.policy()),
            rule: rule.clone(),
            info,
            attempt_started: Instant::now(),
        }
    }

    /// The request as the rule sees it.
    pub fn info(&self) -> RequestInfo {
        self.info
    }

    /// The rule.
    pub fn rule(&self) -> &RequestRule {
        &self.rule
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u32 {
        self.retry.attempts()
    }

    /// What is left of the rule's overall timeout (`None`: the rule has none). An
    /// integration caps each attempt's own timeout by it.
    pub fn remaining(&self) -> Option<Duration> {
        self.retry
            .deadline(&Request::new())
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Chooses the peer for the next attempt, blocking while the list has none (until the
    /// earlier of `request`'s deadline and the rule's timeout), preferring a peer this
    /// request has not tried. Fails with the list's error (`no-deadline`, `timeout`,
    /// `not-started`, ...) when no peer can be chosen, or the rule's when no attempt may
    /// start (a retry after a report said `retry: false`).
    pub fn choose(&mut self, list: &PeerList, request: &Request<'_>) -> Result<Choice> {
        let choice = self.retry.choose(list, request)?;
        self.attempt_started = Instant::now();
        Ok(choice)
    }

    /// [`RequestCall::choose`] for async code: waits without blocking a thread.
    pub async fn choose_async(&mut self, list: &PeerList, request: &Request<'_>) -> Result<Choice> {
        let choice = self.retry.choose_async(list, request).await?;
        self.attempt_started = Instant::now();
        Ok(choice)
    }

    /// [`RequestCall::choose`] without blocking: the answer now (the common case), or a
    /// [`Later`] that waits and hands this call back with it. What the bindings call.
    pub fn choose_now(
        self,
        list: &PeerList,
        request: &Request<'_>,
    ) -> NowOrLater<(RequestCall, Result<Choice>)> {
        let RequestCall {
            rule, info, retry, ..
        } = self;
        match retry.choose_now(list, request) {
            NowOrLater::Now((retry, result)) => {
                NowOrLater::Now((RequestCall::chosen(rule, info, retry), result))
            }
            NowOrLater::Later(later) => NowOrLater::Later(Later::new(async move {
                let (retry, result) = later.await;
                (RequestCall::chosen(rule, info, retry), result)
            })),
        }
    }

    fn chosen(rule: RequestRule, info: RequestInfo, retry: Retry) -> RequestCall {
        RequestCall {
            rule,
            info,
            retry,
            attempt_started: Instant::now(),
        }
    }

    /// Reports what happened to the attempt on `choice` (`classified`: a user
    /// classifier's outcome, overriding the rule's): finishes the choice with the outcome
    /// and the latency since it was chosen, and decides whether to retry. A retry it
    /// allows is already counted (attempts, budget): the next [`RequestCall::choose`]
    /// only picks the peer.
    pub fn report(
        &mut self,
        choice: Choice,
        result: AttemptResult,
        classified: Option<Outcome>,
    ) -> Report {
        let latency = self.attempt_started.elapsed();
        let verdict = self.rule.judge(&self.info, result, classified);
        let mut report = Report {
            outcome: verdict.outcome,
            latency,
            retry: false,
            stopped: None,
        };
        match verdict.outcome {
            Outcome::Ok => self.retry.succeeded(choice, Some(latency)),
            Outcome::Failure => {
                let peer = choice.peer_ref();
                self.retry.failed(choice, result, Some(latency));
                if !verdict.retryable {
                    report.stopped = Some(StopReason::NotRetryable);
                } else {
                    match self.retry.approve_next_after(&peer) {
                        Ok(()) => report.retry = true,
                        Err(e) => report.stopped = Some(self.stop_reason(&e)),
                    }
                }
            }
            Outcome::Declined => {
                let _ = self.retry.declined(choice, result, Some(latency));
            }
            Outcome::Cancelled => choice.finish(Outcome::Cancelled, Some(latency)),
        }
        report
    }

    fn stop_reason(&self, error: &Error) -> StopReason {
        if self.retry.attempts() >= self.rule.max_attempts() {
            StopReason::AttemptsExhausted
        } else if error.code() == ErrorCode::Timeout {
            // The code, not the variant: Retry wraps its errors with the last failed peer.
            StopReason::TimedOut
        } else {
            StopReason::BudgetExhausted
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::list::ListOptions;
    use crate::request_rule::{RequestRuleOptions, RuleBudget};
    use crate::retry::RetryBudget;

    fn list(peers: &[&str]) -> PeerList {
        let list = PeerList::new(ListOptions::default().shuffle(false).ejection(None)).unwrap();
        list.update(peers.iter().copied(), None::<&str>).unwrap();
        list.start().unwrap();
        list
    }

    #[test]
    fn retries_on_other_peers_until_attempts_run_out() {
        let list = list(&["a:1", "b:1", "c:1", "d:1"]);
        let rule = RequestRule::default();
        let mut call = RequestCall::new(&rule, RequestInfo::new("GET", true, None));
        let mut peers = Vec::new();
        let last = loop {
            let c = call.choose(&list, &Request::new()).unwrap();
            peers.push(c.peer().to_string());
            let r = call.report(c, AttemptResult::Reset, None);
            if !r.retry {
                break r;
            }
        };
        assert_eq!(peers, ["a:1", "b:1", "c:1"]);
        assert_eq!(last.stopped, Some(StopReason::AttemptsExhausted));
        assert_eq!(last.outcome, Outcome::Failure);
        let err = call.choose(&list, &Request::new()).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::RetryExhausted);
        assert_eq!(
            err.to_string(),
            "retry attempts exceeded (connection reset; connection reset; connection reset)"
        );
    }

    #[test]
    fn a_post_is_not_retried_once_sent() {
        let list = list(&["a:1", "b:1"]);
        let rule = RequestRule::default();
        let mut call = RequestCall::new(&rule, RequestInfo::new("POST", true, None));
        let c = call.choose(&list, &Request::new()).unwrap();
        let r = call.report(c, AttemptResult::Status(503), None);
        assert_eq!(
            (r.retry, r.stopped),
            (false, Some(StopReason::NotRetryable))
        );
        let mut call = RequestCall::new(&rule, RequestInfo::new("POST", true, None));
        let c = call.choose(&list, &Request::new()).unwrap();
        assert!(call.report(c, AttemptResult::ConnectFailed, None).retry);
    }

    #[test]
    fn the_budget_stops_retries() {
        let clock = ManualClock::new();
        let budget = RetryBudget::new(0.0, 1, Duration::from_secs(1), Clock::from(clock)).unwrap();
        let rule = RequestRule::new(&RequestRuleOptions {
            budget: Some(RuleBudget::Shared(budget.clone())),
            ..Default::default()
        })
        .unwrap();
        let list = list(&["a:1", "b:1"]);
        let mut stops = Vec::new();
        for _ in 0..3 {
            let mut call = RequestCall::new(&rule, RequestInfo::new("GET", true, None));
            loop {
                let c = call.choose(&list, &Request::new()).unwrap();
                let r = call.report(c, AttemptResult::Status(500), None);
                if !r.retry {
                    stops.push(r.stopped.unwrap());
                    break;
                }
            }
        }
        // One retry in the window (1 per second over 1 s, none per call): the first request
        // retries once, then the budget refuses every retry.
        assert!(stops.iter().all(|s| *s == StopReason::BudgetExhausted));
        // Each refusal is counted in the list's metrics.
        let metrics = list.metrics();
        let refused = metrics
            .lines()
            .find(|l| l.starts_with("peerlb_retry_budget_exhausted"))
            .unwrap_or_else(|| panic!("no budget series in {metrics}"));
        assert!(refused.ends_with(" 3"), "{refused}");
        assert_eq!(budget.balance(), 0);
        assert!(Arc::strong_count(&budget) >= 2);
    }

    #[test]
    fn the_timeout_stops_retries() {
        let rule = RequestRule::from_spec("timeout_ms=0&budget=off", None).unwrap();
        let list = list(&["a:1", "b:1"]);
        let mut call = RequestCall::new(&rule, RequestInfo::new("GET", true, None));
        let c = call.choose(&list, &Request::new()).unwrap();
        let r = call.report(c, AttemptResult::TimedOut, None);
        assert_eq!((r.retry, r.stopped), (false, Some(StopReason::TimedOut)));
        assert_eq!(call.remaining(), Some(Duration::ZERO));
    }

    #[test]
    fn outcomes_reach_the_list() {
        let list = list(&["a:1"]);
        let rule = RequestRule::from_spec("max_attempts=1", None).unwrap();
        for (result, classified) in [
            (AttemptResult::Status(503), None),
            (AttemptResult::Status(200), Some(Outcome::Failure)),
            (AttemptResult::Status(429), Some(Outcome::Declined)),
            (AttemptResult::Status(200), None),
        ] {
            let mut call = RequestCall::new(&rule, RequestInfo::new("GET", true, None));
            let c = call.choose(&list, &Request::new()).unwrap();
            call.report(c, result, classified);
        }
        let peer = &list.introspect().peers[0];
        assert_eq!(peer.failures, 2);
        assert_eq!(peer.pending, 0);
        assert_eq!(peer.consecutive_failures, 0);
    }

    #[test]
    fn choose_now_hands_the_call_back() {
        let list = list(&["a:1", "b:1"]);
        let rule = RequestRule::default();
        let call = RequestCall::new(&rule, RequestInfo::new("GET", true, None));
        let NowOrLater::Now((mut call, Ok(c))) = call.choose_now(&list, &Request::new()) else {
            panic!("a peer is available");
        };
        assert!(call.report(c, AttemptResult::Reset, None).retry);
        let (mut call, c) = call.choose_now(&list, &Request::new()).wait();
        let c = c.unwrap();
        assert_eq!(c.peer().as_str(), "b:1");
        assert_eq!(call.attempts(), 2);
        call.report(c, AttemptResult::Status(204), None);
    }
}
