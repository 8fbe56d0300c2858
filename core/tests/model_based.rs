//! Model-based test: random operation sequences (lifecycle, updates, status reports,
//! chooses with every outcome, finishes, drops, admin actions, a manual clock moving
//! ejections along) applied to a real list and to the reference model of its documented
//! semantics (`model/reference.rs`); after every operation the results, the events of each
//! peer and the whole introspection must agree.
//!
//! 10 000 sequences by default (`PROPTEST_CASES=n` for more or fewer). A disagreement is
//! shrunk to a minimal sequence and printed as a conformance scenario, ready to be saved
//! under `tests/conformance/` once the list (or the model) is fixed.

mod model;

use model::compare;
use model::ops::{Admin, Ejection, Op, Outcome, Setup, Status, Wait, STRATEGIES};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

fn setup() -> impl Strategy<Value = Setup> {
    let ejection = prop_oneof![
        1 => Just(None),
        4 => (1u32..=4, 1u64..=10, 1u64..=4, 0usize..5, 0usize..4).prop_map(
            |(failures, base, times, max, panic)| {
                Some(Ejection {
                    failures,
                    base_ms: base * 100,
                    max_ms: base * 100 * times,
                    max_percent: [0, 10, 34, 50, 100][max],
                    panic_percent: [0, 34, 50, 100][panic],
                })
            }
        ),
    ];
    let initial = prop_oneof![
        6 => Just(Some(Status::Available)),
        1 => Just(Some(Status::Connecting)),
        1 => Just(None),
    ];
    (
        prop::sample::select(STRATEGIES.to_vec()),
        prop::bool::weighted(0.3),
        initial,
        ejection,
    )
        .prop_map(|(strategy, fail_fast, initial, ejection)| Setup {
            strategy,
            fail_fast,
            initial,
            ejection,
        })
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        3 => Just(Status::Available),
        1 => Just(Status::Connecting),
        2 => Just(Status::Unavailable),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Ok),
        4 => Just(Outcome::Failure),
        1 => Just(Outcome::Declined),
        1 => Just(Outcome::Cancelled),
    ]
}

/// Mostly the five ordinary ids; sometimes the failing ones or the invalid one.
fn peer() -> impl Strategy<Value = u8> {
    prop_oneof![
        12 => 0u8..5,
        1 => 5u8..8,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let weight = prop_oneof![8 => Just(1u32), 2 => 2u32..=3, 1 => Just(0u32)];
    prop_oneof![
        2 => Just(Op::Start),
        1 => Just(Op::Stop),
        4 => (
            prop::collection::vec((peer(), weight), 0..=3),
            prop::collection::vec(peer(), 0..=2),
        )
            .prop_map(|(add, remove)| Op::Update { add, remove }),
        3 => (peer(), status()).prop_map(|(p, s)| Op::SetStatus(p, s)),
        8 => (
            any::<bool>(),
            outcome(),
            prop::bool::weighted(0.8),
            any::<u8>(),
        )
            .prop_map(|(hold, outcome, zero, key)| Op::Choose {
                hold,
                outcome,
                wait: if zero { Wait::Zero } else { Wait::None },
                key,
            }),
        3 => (any::<u8>(), outcome(), prop::option::of(0u16..500)).prop_map(
            |(held, outcome, latency_ms)| Op::Finish {
                held,
                outcome,
                latency_ms,
            }
        ),
        1 => any::<u8>().prop_map(|held| Op::Drop { held }),
        2 => (0u32..32).prop_map(|n| Op::Advance(n * 50)),
        3 => (
            prop::sample::select(vec![Admin::Disable, Admin::Enable, Admin::Reset, Admin::Delete]),
            peer(),
        )
            .prop_map(|(a, p)| Op::Admin(a, p)),
    ]
}

#[test]
fn list_agrees_with_its_model() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let config = Config {
        cases,
        failure_persistence: None,
        // Shrinking a long sequence takes many runs; each is cheap.
        max_shrink_iters: 100_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let operations = std::cell::Cell::new(0usize);
    let result = runner.run(
        &(setup(), prop::collection::vec(op(), 1..40)),
        |(setup, ops)| {
            operations.set(operations.get() + ops.len());
            match compare::run(&setup, &ops) {
                Ok(_) => Ok(()),
                Err(d) => Err(TestCaseError::fail(d.message)),
            }
        },
    );
    match result {
        Ok(()) => println!(
            "model-based: {cases} sequences ({} operations) agreed with the model",
            operations.get()
        ),
        Err(TestError::Fail(reason, (setup, ops))) => {
            let listing: Vec<String> = ops.iter().map(|o| o.to_string()).collect();
            let scenario = model::scenario::scenario("model-disagreement", &setup, &ops);
            panic!(
                "the list disagrees with its model: {reason}\nsetup: {setup:?}\noperations:\n  {}\n\
                 as a conformance scenario:\n{}",
                listing.join("\n  "),
                serde_json::to_string_pretty(&scenario).unwrap()
            );
        }
        Err(e) => panic!("{e}"),
    }
}

/// The byte encoding the fuzzer uses reads back what it wrote.
#[test]
fn operation_encoding_round_trips() {
    let mut runner = TestRunner::new(Config {
        cases: 500,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(setup(), prop::collection::vec(op(), 0..40)),
            |(setup, ops)| {
                let bytes = model::ops::encode(&setup, &ops);
                let (s, o) = model::ops::decode(&bytes);
                prop_assert_eq!(s, setup);
                // Update lists longer than the encoding holds are cut; everything else is kept.
                prop_assert_eq!(o.len(), ops.len());
                Ok(())
            },
        )
        .unwrap();
}
