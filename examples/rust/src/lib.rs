//! The pieces of `make demo` (the `demo` bin): a small HTTP/1.1 backend and client
//! ([`http`]), and one strategy's run against fresh backends, one of them killed part-way
//! ([`workload`]). Percentiles and the SVG chart come from `peerlb-sim`.
#![warn(missing_docs)]

pub mod http;
pub mod workload;
