//! A manual clock moved as far as it goes (`Duration::MAX`, which saturates at u64::MAX
//! nanoseconds) with peers ejected, pending and timed: every strategy still chooses,
//! finishes, ejects and introspects without an arithmetic overflow (the C ABI fuzz target
//! found introspection overflowing there).

use std::time::Duration;

use peerlb::clock::ManualClock;
use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};

#[test]
fn a_manual_clock_moved_to_its_end_overflows_nothing() {
    for kind in StrategyKind::ALL {
        let clock = ManualClock::new();
        let list = PeerList::new(
            ListOptions::default()
                .strategy(kind)
                .ejection(peerlb::ejection::parse("failures=1&base_ms=100").unwrap())
                .clock(clock.clone().into()),
        )
        .unwrap();
        list.update(["a:1", "b:1", "c:1", "d:1"], None::<&str>)
            .unwrap();
        list.start().unwrap();

        // One peer ejected, one request left pending across the jump.
        let failed = list.choose(&Request::new()).unwrap();
        failed.finish(Outcome::Failure, None);
        let pending = list.choose(&Request::new()).unwrap();
        clock.advance(Duration::from_millis(50));
        let before = list.introspect();
        assert_eq!(
            before.peers.iter().filter(|p| p.ejected).count(),
            1,
            "{kind:?}"
        );

        for _ in 0..2 {
            clock.advance(Duration::MAX);
            let after = list.introspect();
            assert_eq!(after.peers.len(), 4, "{kind:?}");
            assert!(
                after.peers.iter().all(|p| p.ejected_for_ms == 0),
                "{kind:?}: an ejection outlived the end of time: {after:?}"
            );
            for outcome in [Outcome::Failure, Outcome::Ok, Outcome::Cancelled] {
                let c = list.choose(&Request::new()).unwrap();
                c.finish(outcome, None);
            }
        }
        pending.finish(Outcome::Ok, None);
        let end = list.introspect();
        assert_eq!(
            end.peers.iter().map(|p| p.pending).sum::<usize>(),
            0,
            "{kind:?}"
        );
        list.stop().unwrap();
    }
}
