//! The retry budget counts only what happened: a retry that never started (no peer could be
//! chosen for it) gives its token back.

use std::time::Duration;

use peerlb::clock::{Clock, ManualClock};
use peerlb::retry::{Attempt, RetryBudget, RetryPolicy};
use peerlb::{ListOptions, PeerList, Request};

/// A retry whose choose fails gives its budget token back.
#[test]
fn retry_budget_refunded_when_no_retry_happens() {
    let manual = ManualClock::new();
    let budget =
        RetryBudget::new(0.0, 1, Duration::from_secs(1), Clock::from(manual.clone())).unwrap();
    let list = PeerList::new(ListOptions::default().fail_fast(true).ejection(None)).unwrap();
    list.update(["a:1"], None::<&str>).unwrap();
    list.start().unwrap();
    let policy = RetryPolicy::new(2).budget(budget.clone());
    assert_eq!(budget.balance(), 1);
    // Attempt 1 fails and, inside the attempt, the only peer goes away: the retry's choose
    // fails with no-peer-available.
    let l2 = list.clone();
    let r = peerlb::retry::call(&list, &Request::new(), &policy, |_p| -> Result<(), _> {
        l2.update(None::<&str>, ["a:1"]).unwrap();
        Err(Attempt::Failure("boom"))
    });
    println!("call -> {r:?}; balance now {}", budget.balance());
    assert_eq!(
        budget.balance(),
        1,
        "no retry was made, yet the budget token is gone"
    );
}
