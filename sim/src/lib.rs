//! # peerlb-sim — a balancing simulator over peerlb's real strategies
//!
//! A discrete-event simulation in virtual time: N backends with latency distributions
//! (lognormal, exponential, constant), some slowed down k× or failing a share of requests;
//! open-loop Poisson arrivals at a given rate, so many requests are in flight at once.
//! Every arrival chooses through a real [`peerlb::PeerList`] (built from a strategy spec
//! string, on a [`peerlb::ManualClock`] advanced to each event's time, `fail_fast`), and
//! every completion finishes its [`peerlb::Choice`] with the sampled latency and
//! `ok`/`failure`. No strategy logic lives here.
//!
//! * [`model`]: backends and scenarios, and the known cases ([`model::known_scenarios`]);
//! * [`engine`]: one strategy on one scenario ([`engine::run`]);
//! * [`fleet`]: many clients (each its own list, full mesh or a deterministic subset) over
//!   thousands of backends in zones ([`fleet::run`]);
//! * [`report`]: strategies × scenarios, the markdown table and the SVG chart;
//! * [`stats`], [`svg`]: percentiles and hand-written charts (also used by `make demo`).
//!
//! ## Reproducibility
//!
//! The simulation's own randomness (arrivals, keys, latencies, errors) comes from
//! fixed-seed generators, and the list gets the scenario's seed. The core's random
//! strategies (`random`, `two-random-choices`, `peak-ewma`) draw from one stream per
//! *thread stripe*, and a thread's stripe is assigned in order of first use in the process;
//! so a run is exactly reproducible on the same stripe (e.g. the `peerlb-sim` binary's main
//! thread, or a test binary with one test), and statistically the same on any other.
#![warn(missing_docs)]

pub mod engine;
pub mod fleet;
pub mod model;
pub mod report;
pub mod stats;
pub mod svg;
