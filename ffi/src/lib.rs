//! # peerlb-ffi — the C ABI of peerlb
//!
//! Builds `libpeerlb.so` (SONAME `libpeerlb.so.<major>`, exporting only `peerlb_*`) and
//! `libpeerlb.a`; `include/peerlb.h` is generated from this crate by cbindgen.
//!
//! Conventions, for every module that adds C functions:
//!
//! * Handles are opaque (`peerlb_list`, `peerlb_list_options`, `peerlb_subscriber`,
//!   `peerlb_manual_clock`, `peerlb_subscription`, `peerlb_retry`, `peerlb_retry_budget`,
//!   `peerlb_updater`, `peerlb_upstream`, `peerlb_session`, `peerlb_admin_server`,
//!   `peerlb_request_rule`, `peerlb_request_call`); plain data (`peerlb_request`,
//!   `peerlb_choice`, `peerlb_peer_spec`, `peerlb_event`, `peerlb_request_report`, vtables,
//!   option structs) is `#[repr(C)]`. Every pointer from C is read through the `handle` module:
//!   borrowing, freeing, out-parameters, strings and arrays are written once there.
//! * Every fallible call returns [`peerlb_status`]: 0 is success, every other value is the
//!   core's `ErrorCode::as_u32()` (`PEERLB_INVALID_ARGUMENT` = 1 ... `PEERLB_INTERNAL` =
//!   15, `PEERLB_OVERLOADED` = 16). Out-parameters are written only on success. `peerlb_last_error_message()` and
//!   `peerlb_last_error_codes()` describe the calling thread's last failure.
//! * Every entry point runs inside the panic boundary (the `boundary` module): nothing unwinds into
//!   C and nothing aborts; a caught panic is `PEERLB_INTERNAL` with the panic's message.
//! * NULL pointers, non-UTF-8 ids, empty and over-long ids, impossible lengths and unknown
//!   enum values are `PEERLB_INVALID_ARGUMENT`. C enums (outcome, connection status, admin
//!   result, event kind, DNS record) are plain `uint32_t` typedefs with `#define`d values,
//!   so an unknown value coming in is an error and not undefined behaviour.
//! * Defaults are the core's: "not given" (NULL, 0 or a negative number, as each function
//!   says) is passed on as such.
//! * Each function's rustdoc (and so the header) says who frees what ("Ownership") and
//!   from which threads it may be called.

#![warn(missing_docs)]
#![allow(non_camel_case_types)] // C names: peerlb_list, peerlb_status, ...
#![allow(clippy::missing_safety_doc)] // every unsafe fn has a `# Safety` section in prose

use std::ffi::c_char;

pub mod admin;
pub mod admin_http;
mod boundary;
pub mod breakers;
pub mod choice;
pub mod clock;
pub mod ejection;
pub mod error;
pub mod events;
mod handle;
pub mod list;
pub mod metrics;
pub mod options;
pub mod queries;
pub mod request_rule;
pub mod retry;
pub mod session;
pub mod subset;
pub mod transport;
pub mod updater;
pub mod upstream;

pub use admin::*;
pub use admin_http::*;
pub use breakers::*;
pub use choice::*;
pub use clock::*;
pub use ejection::*;
pub use error::peerlb_status;
pub use events::*;
pub use list::*;
pub use metrics::*;
pub use options::*;
pub use queries::*;
pub use request_rule::*;
pub use retry::*;
pub use session::*;
pub use transport::*;
pub use updater::*;
pub use upstream::*;

/// The library version as `"MAJOR.MINOR.PATCH"`, equal to the header's
/// `PEERLB_VERSION_MAJOR/MINOR/PATCH` for the header it was built with.
///
/// Ownership: a static string; never free it. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn peerlb_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Frees a string peerlb returned (`peerlb_list_introspect`, `peerlb_list_backends`,
/// `peerlb_list_backend_config`, `peerlb_list_add_backend`, `peerlb_list_peers`,
/// `peerlb_session_peer`, `peerlb_session_failover`, `peerlb_upstream_pick`,
/// `peerlb_updater_last_error`, `peerlb_list_metrics`, `peerlb_metrics`,
/// `peerlb_admin_server_url`). NULL is ignored.
///
/// Ownership: takes `s` back. Thread safety: any thread.
///
/// # Safety
/// `s` must be NULL or a string from peerlb, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_string_free(s: *mut c_char) {
    // SAFETY: forwarded contract.
    unsafe { handle::free_string(s) }
}
