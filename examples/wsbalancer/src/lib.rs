//! # wsbalancer — a WebSocket balancer built on peerlb
//!
//! Frontend clients connect to the balancer; for each, it opens a peerlb
//! [`Session`](peerlb::Session) and dials the chosen backend, then relays messages both
//! ways through a chain of [valves](valve). When the backend connection ends abnormally
//! it fails the session over to another backend and re-sends the client messages the old
//! backend had not acknowledged ([`protocol`]), so the client sees no gap. An admin HTTP
//! API on its own loopback port ([`admin`]) lists, adds, configures, disables, enables,
//! deletes, resets and fails over backends; the session listener logs every session.
//!
//! Binaries: `wsbalancer` (the balancer), `wsbackend` (an echo backend speaking the
//! protocol), `wsdemo` (the `make demo` scenario). See `README.md` beside this crate.

pub mod admin;
pub mod args;
pub mod backend;
pub mod balancer;
pub mod protocol;
pub mod proxy;
pub mod valve;
