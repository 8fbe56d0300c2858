//! The conformance interpreter's operations in random sequences: the bytes decode to a
//! list setup and operations (lifecycle, updates with valid, failing and invalid ids,
//! status reports, chooses with every outcome, finishes, drops, admin actions, a manual
//! clock), which run on a real list and on the reference model of its documented
//! semantics (`core/tests/model/`, shared with the model-based test). Any disagreement,
//! panic or abort is a crash.
#![no_main]

#[path = "../../core/tests/model/mod.rs"]
mod model;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (setup, ops) = model::ops::decode(data);
    if let Err(d) = model::compare::run(&setup, &ops) {
        let listing: Vec<String> = ops.iter().map(|o| o.to_string()).collect();
        panic!(
            "the list disagrees with its model: {}\nsetup: {setup:?}\noperations:\n  {}",
            d.message,
            listing.join("\n  ")
        );
    }
});
