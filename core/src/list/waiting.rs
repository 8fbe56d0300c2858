//! Waiting: `choose` when no peer is available now.
//!
//! The fast path (`ListShared::try_choose`) asks the strategy and takes no lock of the
//! list. When it finds nothing, the list decides whether the request can wait: not on a
//! list that is not running (`not-started`), not on a fail-fast list
//! (`no-peer-available`), not without a deadline (`no-deadline`). Otherwise it waits for
//! the list's `changed` event (fired when a peer is offered or the list stops) or the
//! deadline, whichever comes first, and tries again. The blocking wait parks the thread;
//! the async wait uses futures-timer's thread for the deadline, never a worker of the
//! library's runtime, so a deadline is kept even when every runtime worker is busy.

use std::time::{Duration, Instant};

use super::{ListShared, PeerList};
use crate::choice::Choice;
use crate::error::{Error, Result};
use crate::now_or_later::{Later, NowOrLater};
use crate::request::Request;

impl ListShared {
    /// The strategy's pick; a routed list's own strategy is empty, so routing picks the
    /// locality whose strategy chooses (see `routing.rs`); an unrouted list never gets
    /// past the first call.
    #[inline(always)]
    pub(super) fn strategy_choose(&self, request: &Request<'_>) -> Option<crate::peer::InFlight> {
        match self.strategy.choose(request) {
            Some(r) => Some(r),
            None => self.routing.choose(request),
        }
    }

    #[inline(always)]
    pub(super) fn try_choose(&self, request: &Request<'_>) -> Option<Choice> {
        if let Some(breakers) = &self.breakers {
            // Within the limits at once, or the slow path (`pick`) works it out.
            return self.try_pick(breakers, request);
        }
        let request = self.strategy_choose(request)?;
        if self.notify_chosen {
            self.pending_changed(&request.peer_ref());
        }
        if self.notify_outcome {
            // Its peer's other requests in flight (this one is counted already).
            let others = request.peer().pending().saturating_sub(1);
            let others = u32::try_from(others).unwrap_or(u32::MAX);
            return Some(Choice::timed(request, self.stamp(), others));
        }
        Some(Choice::new(request))
    }

    /// Why a choose cannot wait: not running, fail-fast, or no deadline.
    fn cannot_wait(&self, request: &Request<'_>) -> Option<Error> {
        if !self.is_running() {
            return Some(self.not_running());
        }
        if self.fail_fast {
            return Some(Error::NoPeerAvailable(self.unavailable_message()));
        }
        if request.deadline().is_none() {
            return Some(Error::NoDeadline(format!(
                "{}, and the request has no deadline to wait for one; give choose a timeout",
                self.unavailable_message()
            )));
        }
        None
    }

    /// The blocking wait: the async one, on this thread.
    #[cold]
    pub(super) fn choose_slow(&self, request: &Request<'_>) -> Result<Choice> {
        if self.has_breakers() {
            // Lists with circuit breakers pick here, without the waiting machinery.
            if let Some(choice) = self.pick(request)? {
                return Ok(choice);
            }
        }
        crate::now_or_later::block_on(self.choose_slow_async(request))
    }

    #[cold]
    pub(super) async fn choose_slow_async(&self, request: &Request<'_>) -> Result<Choice> {
        if self.has_breakers() {
            // The fast path left breaker lists to us: a breaker refuses before any wait.
            if let Some(choice) = self.pick(request)? {
                return Ok(choice);
            }
        }
        let started = Instant::now();
        let mut timer: Option<futures_timer::Delay> = None;
        loop {
            if let Some(err) = self.cannot_wait(request) {
                return Err(err);
            }
            let deadline = request.deadline().expect("checked by cannot_wait");
            let listener = self.changed.listen();
            if let Some(choice) = self.pick(request)? {
                return Ok(choice);
            }
            if !self.is_running() {
                return Err(self.not_running());
            }
            let timer = timer.get_or_insert_with(|| {
                futures_timer::Delay::new(deadline.saturating_duration_since(Instant::now()))
            });
            let woke = changed_before(listener, timer).await;
            if !woke {
                return self.pick(request)?.ok_or_else(|| self.timed_out(started));
            }
        }
    }

    /// The slow half of [`PeerList::choose_now`]: the final error now, or a wait.
    #[cold]
    pub(super) fn choose_later(
        &self,
        list: PeerList,
        request: &Request<'_>,
    ) -> NowOrLater<Result<Choice>> {
        if self.has_breakers() {
            // The fast path left breaker lists to us: a breaker refuses before any wait.
            match self.pick(request) {
                Ok(None) => {}
                answer => return NowOrLater::Now(answer.map(|c| c.expect("matched above"))),
            }
        }
        if let Some(err) = self.cannot_wait(request) {
            // A peer may have come meanwhile.
            return NowOrLater::Now(self.pick(request).and_then(|c| c.ok_or(err)));
        }
        let deadline = request.deadline().expect("checked by cannot_wait");
        let key = request.shard_key().map(<[u8]>::to_vec);
        NowOrLater::Later(Later::new(async move {
            let mut request = Request::new().with_deadline(deadline);
            if let Some(k) = &key {
                request = request.with_shard_key(k);
            }
            list.shared.choose_slow_async(&request).await
        }))
    }

    pub(super) fn not_running(&self) -> Error {
        Error::NotStarted(format!(
            "{:?} peer list is not running; call start() first",
            self.name()
        ))
    }

    fn timed_out(&self, started: Instant) -> Error {
        Error::Timeout(format!(
            "{:?} peer list timed out after {:?} waiting for an available peer: {}",
            self.name(),
            Duration::from_millis(started.elapsed().as_millis() as u64),
            self.unavailable_message()
        ))
    }
}

/// Waits for `changed` (a listener on the list's `changed` event, made *before* the last
/// look at the list, so that no change is missed) or the end of `timer`, whichever comes
/// first: true when the list changed.
pub(super) async fn changed_before(
    changed: impl std::future::Future<Output = ()>,
    timer: &mut futures_timer::Delay,
) -> bool {
    use std::future::Future;
    use std::task::Poll;
    let mut changed = std::pin::pin!(changed);
    std::future::poll_fn(|cx| {
        if changed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        match std::pin::Pin::new(&mut *timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
