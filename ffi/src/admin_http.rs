//! The admin endpoint: `peerlb_admin_serve`, `peerlb_admin_server_url`,
//! `peerlb_admin_server_port`, `peerlb_admin_server_free`.

use std::ffi::c_char;

use peerlb::admin_http::{serve_admin_with, AdminOptions, AdminServer};

use crate::boundary::guard;
use crate::error::peerlb_status;
use crate::handle::{self, Handle, Owned};

/// A running admin endpoint (an HTTP/1.1 server on the library's runtime).
///
/// Ownership: made by `peerlb_admin_serve`, stopped and freed by `peerlb_admin_server_free`.
/// Thread safety: any thread; `peerlb_admin_server_free` must be the last use.
pub struct peerlb_admin_server {
    _private: [u8; 0],
}

impl Handle for peerlb_admin_server {
    type Target = AdminServer;
    type Ownership = Owned;
    const NAME: &'static str = "server";
}

/// Serves the admin endpoint: `GET /metrics` (every list's metrics), `GET /lists`,
/// `GET /lists/{name}`, `GET /lists/{name}/backends[/{id}]`, `POST /lists/{name}/backends`
/// (add `{"id": "...", "weight": n}`), `POST /lists/{name}/backends/{id}/disable|enable|reset`
/// and `DELETE /lists/{name}/backends/{id}`; answers are JSON, failures a 4xx with
/// `{"status":"failed","error":{"code":...,"message":...}}`.
///
/// `address` is `host:port`, `[v6]:port` or a bare port (`"9901"`, `":0"` for a free one)
/// on 127.0.0.1; NULL means `127.0.0.1:9901`. `token` NULL serves without authentication;
/// otherwise every request needs `Authorization: Bearer <token>` (401 without it).
///
/// Ownership: the caller frees `*out` with `peerlb_admin_server_free`; the strings are
/// copied.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL `out`, non-UTF-8, a bad address or token,
/// or an address that cannot be listened on (in use, not local).
///
/// # Safety
/// `address` and `token` NULL or NUL-terminated strings; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_admin_serve(
    address: *const c_char,
    token: *const c_char,
    out: *mut *mut peerlb_admin_server,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let out = unsafe { handle::out(out, "out") }?;
        let read = |p: *const c_char, name: &str| -> Result<Option<String>, peerlb::Error> {
            if p.is_null() {
                return Ok(None);
            }
            // SAFETY: forwarded contract (non-NULL here).
            Ok(Some(unsafe { handle::c_str(p, name) }?.to_owned()))
        };
        let server = serve_admin_with(AdminOptions {
            address: read(address, "address")?,
            token: read(token, "token")?,
        })?;
        out.write(handle::into_raw(server));
        Ok(())
    })
}

/// The endpoint's base URL, e.g. `http://127.0.0.1:9901`.
///
/// Ownership: the caller frees `*url` with `peerlb_string_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `server` NULL or live; `url` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_admin_server_url(
    server: *const peerlb_admin_server,
    url: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (server, url) = unsafe { (handle::borrow(server)?, handle::out(url, "url")?) };
        url.write(handle::string_out(server.url()));
        Ok(())
    })
}

/// The port the endpoint listens on (the one the system chose for port 0).
///
/// Ownership: borrows both arguments for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `server` NULL or live; `port` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_admin_server_port(
    server: *const peerlb_admin_server,
    port: *mut u16,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (server, port) = unsafe { (handle::borrow(server)?, handle::out(port, "port")?) };
        port.write(server.local_addr().port());
        Ok(())
    })
}

/// Stops the endpoint (its port closes, open connections end) and frees it. NULL is
/// ignored.
///
/// Ownership: takes `server` back.
///
/// # Safety
/// `server` NULL or from `peerlb_admin_serve`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_admin_server_free(server: *mut peerlb_admin_server) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(server) }
}
