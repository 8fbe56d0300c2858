//! # peerlb-ffi — the C ABI of peerlb
//!
//! Builds `libpeerlb.so` (SONAME `libpeerlb.so.<major>`, exporting only `peerlb_*`) and
//! `libpeerlb.a`; `include/peerlb.h` is generated from this crate by cbindgen.
//!
//! Conventions, for this module and every later one that adds C functions:
//!
//! * Handles are opaque (`peerlb_list`, `peerlb_list_options`, `peerlb_subscriber`,
//!   `peerlb_manual_clock`, `peerlb_subscription`, `peerlb_retry`, `peerlb_retry_budget`);
//!   plain data (`peerlb_request`, `peerlb_choice`, `peerlb_peer_spec`, `peerlb_event`) is
//!   `#[repr(C)]`.
//! * Every fallible call returns [`peerlb_status`]: 0 is success, 1..=11 are the core's
//!   `ErrorCode::as_u32()` values, `PEERLB_PANIC` is a caught panic. Out-parameters are
//!   written only on success. `peerlb_last_error_message()` and `peerlb_last_error_codes()`
//!   describe the calling thread's last failure.
//! * Every entry point runs inside [`error::guard`] (a panic boundary): nothing unwinds into
//!   C and nothing aborts.
//! * NULL pointers, non-UTF-8 ids, empty and over-long ids, unknown enum values are
//!   `PEERLB_INVALID_ARGUMENT`. C enums (outcome, connection status, admin result, event
//!   kind) are plain `uint32_t` typedefs with `#define`d values, so an unknown value coming
//!   in is an error and not undefined behaviour.
//! * Each function's rustdoc (and so the header) says who frees what and from which threads
//!   it may be called.

#![warn(missing_docs)]
#![allow(non_camel_case_types)] // C names: peerlb_list, peerlb_status, ...
#![allow(clippy::missing_safety_doc)] // every unsafe fn has a `# Safety` section in prose

use std::ffi::c_char;

pub mod admin;
pub mod clock;
pub mod ejection;
pub mod error;
pub mod events;
pub mod list;
pub mod retry;
pub mod transport;
pub mod updater;
pub mod upstream;

pub use admin::*;
pub use clock::*;
pub use ejection::*;
pub use error::peerlb_status;
pub use events::*;
pub use list::*;
pub use retry::*;
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
