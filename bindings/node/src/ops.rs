//! `serveAdmin` / `AdminServer` (the core's admin endpoint) and `metrics()` (every list's
//! metrics, from the core's process-wide registry).

use napi::bindgen_prelude::Unknown;
use napi::{Env, JsValue};
use napi_derive::napi;
use peerlb::admin_http::{serve_admin_with, AdminOptions};

use crate::convert;
use crate::guard;

/// Options of `serveAdmin(address, options)`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct AdminServeOptions {
    /// A bearer token every request must carry (`Authorization: Bearer <token>`), else 401.
    pub token: Option<String>,
}

/// A running admin endpoint (from `serveAdmin`); `stop()` (or `using`) stops it.
#[napi]
pub struct AdminServer {
    inner: peerlb::AdminServer,
}

#[napi]
impl AdminServer {
    /// The base URL, e.g. `http://127.0.0.1:9901`.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// The port it listens on (the one the system chose for port 0).
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        u32::from(self.inner.local_addr().port())
    }

    /// `host:port` it listens on.
    #[napi(getter)]
    pub fn address(&self) -> String {
        self.inner.local_addr().to_string()
    }

    /// Stops it: the port is closed when this returns, open connections end. Stopping
    /// twice does nothing.
    #[napi]
    pub fn stop(&self, env: Env) -> napi::Result<()> {
        guard::call(&env, || {
            self.inner.stop();
            Ok(())
        })
    }
}

/// Serves the admin endpoint: `GET /metrics`, `GET /lists`, `GET /lists/{name}`,
/// `GET /lists/{name}/backends[/{id}]`, `POST /lists/{name}/backends` (add),
/// `POST /lists/{name}/backends/{id}/disable|enable|reset`, `DELETE /lists/{name}/backends/{id}`.
/// `address` is `'host:port'`, `'[v6]:port'` or a bare port (`'9901'`, `':0'`) on
/// 127.0.0.1; not given, `127.0.0.1:9901`. A bad address or token, or a port in use, is
/// PEERLB_INVALID_ARGUMENT.
#[napi(ts_args_type = "address?: string | null, options?: AdminServeOptions | null")]
pub fn serve_admin(
    env: Env,
    address: Option<Unknown>,
    options: Option<Unknown>,
) -> napi::Result<AdminServer> {
    let address: Option<String> = match address {
        Some(a) => unsafe { convert::arg(env.raw(), a.raw(), "serveAdmin(address)")? },
        None => None,
    };
    let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
    let o: AdminServeOptions = unsafe { convert::options(env.raw(), raw, "serveAdmin(options)")? };
    let inner = guard::call(&env, || {
        serve_admin_with(AdminOptions {
            address,
            token: o.token,
        })
    })?;
    Ok(AdminServer { inner })
}

/// Every live list's metrics in the Prometheus text format (a list sharing its name with a
/// newer live list is left out): what the admin endpoint's `/metrics` serves.
#[napi]
pub fn metrics(env: Env) -> napi::Result<String> {
    guard::call(&env, || Ok(peerlb::metrics::gather()))
}
