//! # peerlb — client-side load balancing
//!
//! For every outbound request, choose the peer (`host:port`) to send it to, and learn from
//! how the request went. This crate is the whole engine; C, Python and Node use it through
//! thin bindings, so every surface behaves the same.
//!
//! The pieces, in yarpc's vocabulary:
//!
//! * a [`Transport`] retains and releases peers and reports their [`ConnectionStatus`]
//!   through a [`Subscriber`] ([`AlwaysAvailable`] by default);
//! * a [`PeerList`] owns the peers' lifecycle, waiting and locking, and offers the
//!   *available* peers to a [`Strategy`];
//! * [`PeerList::choose`] returns a [`Choice`], which [`Choice::finish`] ends with an
//!   [`Outcome`].
//!
//! ```
//! use std::time::Duration;
//! use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};
//!
//! let list = PeerList::new(
//!     ListOptions::default().strategy(StrategyKind::TwoRandomChoices),
//! ).unwrap();
//! list.update(["127.0.0.1:8001", "127.0.0.1:8002"], None::<&str>).unwrap();
//! list.start().unwrap();
//! let choice = list.choose(&Request::new().with_timeout(Duration::from_secs(1))).unwrap();
//! // ... send the request to choice.peer() ...
//! choice.finish(Outcome::Ok, Some(Duration::from_millis(12)));
//! ```
#![warn(missing_docs)]

pub mod admin;
pub mod admin_http;
mod choice;
pub mod clock;
pub mod ejection;
mod error;
pub mod events;
mod introspect;
pub mod list;
pub mod load_report;
pub mod metrics;
mod now_or_later;
mod peer;
pub mod probe;
pub mod registry;
mod request;
pub mod request_rule;
pub mod retry;
pub mod runtime;
pub mod session;
pub mod spec;
pub mod strategy;
pub mod subset;
mod sync;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(all(test, peerlb_loom))]
mod loom_models;
pub mod tcp_probe;
#[cfg(feature = "tower")]
pub mod tower;
pub mod transport;
pub mod updater;
pub mod upstream;

pub use admin::AdminResult;
pub use admin_http::{serve_admin, AdminServer};
pub use choice::Choice;
pub use clock::{Clock, ManualClock};
pub use ejection::EjectionPolicy;
pub use error::{panic_message, Error, ErrorCode, RemoteSystem, Result};
pub use events::{EventKind, PeerEvent, Subscription};
pub use introspect::{
    ListIntrospection, PeerIntrospection, PriorityIntrospection, SubsetIntrospection,
};
pub use list::{ListOptions, PeerList};
pub use load_report::LoadReport;
pub use now_or_later::{Later, NowOrLater};
pub use peer::{
    ConnectionStatus, InFlight, Peer, PeerId, PeerRef, PeerSpec, PeerStatus, MAX_ITEMS_PER_CALL,
    MAX_PEER_ID_LEN, MAX_ZONE_LEN,
};
pub use request::{Outcome, Request};
pub use retry::{Attempt, Retry, RetryBudget, RetryBudgetOptions, RetryPolicy};
pub use session::{Reason, Session, SessionEvent, SessionEventKind};
pub use strategy::{Strategy, StrategyConfig, StrategyKind};
pub use tcp_probe::{transport_from_spec, TcpProbe, TcpProbeOptions};
pub use transport::{AlwaysAvailable, Subscriber, Transport};
pub use upstream::{HealthCheck, Upstream, UpstreamOptions};

/// The crate version, e.g. `"0.1.0"`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
