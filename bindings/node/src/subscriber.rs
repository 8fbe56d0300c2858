//! `Subscriber`: the handle a transport reports a peer's status through (handed to its
//! `retain`, and the same object again to its `release`).

use napi::bindgen_prelude::Unknown;
use napi::{Env, JsValue};
use napi_derive::napi;
use peerlb::ConnectionStatus;

use crate::{convert, guard, js};

/// The handle a transport reports a peer's status through (handed to `retain`; `release`
/// gets the same object).
#[napi]
pub struct Subscriber {
    pub(crate) inner: peerlb::Subscriber,
}

#[napi]
impl Subscriber {
    /// Reports `'available'`, `'connecting'` or `'unavailable'`, at any time (from inside
    /// `retain` or later). Returns true if the list took the report, false if it was stale
    /// (the peer was released, or the list is gone).
    #[napi(ts_args_type = "status: 'available' | 'connecting' | 'unavailable'")]
    pub fn set_status(&self, env: Env, status: Unknown) -> napi::Result<bool> {
        let what = "subscriber.setStatus(status): status";
        let s: String = unsafe { convert::arg(env.raw(), status.raw(), what)? };
        let status: ConnectionStatus = s.parse().map_err(|e| js::throw(&env, &e))?;
        guard::call(&env, || Ok(self.inner.set_status(status)))
    }

    /// The id of the peer this subscriber reports on.
    #[napi(getter)]
    pub fn peer_id(&self) -> String {
        self.inner.peer_id().to_string()
    }
}
