//! # peerlb-ffi — the C ABI of peerlb
//!
//! Builds `libpeerlb.so` (SONAME `libpeerlb.so.<major>`, exporting only `peerlb_*`) and
//! `libpeerlb.a`; `include/peerlb.h` is generated from this crate by cbindgen.
//!
//! Conventions, for this module and every later one that adds C functions:
//!
//! * Handles are opaque (`peerlb_list`, `peerlb_list_options`, `peerlb_subscriber`); plain
//!   data (`peerlb_request`, `peerlb_choice`, `peerlb_peer_spec`) is `#[repr(C)]`.
//! * Every fallible call returns [`peerlb_status`]: 0 is success, 1..=11 are the core's
//!   `ErrorCode::as_u32()` values, `PEERLB_PANIC` is a caught panic. Out-parameters are
//!   written only on success. `peerlb_last_error_message()` and `peerlb_last_error_codes()`
//!   describe the calling thread's last failure.
//! * Every entry point runs inside [`error::guard`] (a panic boundary): nothing unwinds into
//!   C and nothing aborts.
//! * NULL pointers, non-UTF-8 ids, empty and over-long ids, unknown enum values are
//!   `PEERLB_INVALID_ARGUMENT`. C enums coming *in* (outcome, connection status) are plain
//!   `uint32_t` typedefs with `#define`d values, so an unknown value is an error and not
//!   undefined behaviour.
//! * Each function's rustdoc (and so the header) says who frees what and from which threads
//!   it may be called.

#![warn(missing_docs)]
#![allow(non_camel_case_types)] // C names: peerlb_list, peerlb_status, ...
#![allow(clippy::missing_safety_doc)] // every unsafe fn has a `# Safety` section in prose

use std::ffi::c_char;

pub mod error;
pub mod list;
pub mod transport;
pub mod updater;
pub mod upstream;

pub use error::peerlb_status;
pub use list::*;
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
