//! Model-based testing of the peer list: a small reference model of its documented
//! semantics (lifecycle, update, availability, choose outcomes, pending, admin, ejection on
//! a manual clock, events), operations to apply to both, a comparison, and a writer that
//! turns a sequence into a conformance scenario.
//!
//! Used by `core/tests/model_based.rs` (proptest) and by the fuzzer's `list_operations`
//! target (`fuzz/`), which includes this folder by path.

#![allow(dead_code)]

pub mod compare;
pub mod ops;
pub mod reference;
pub mod scenario;
