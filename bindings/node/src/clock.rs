//! `ManualClock`: the core's test clock for JS. It stands still until `advance(ms)`, which
//! also runs what came due: ejections end inside `advance`, and their events have reached
//! subscribers when it returns. One clock may drive many lists and retry budgets.

use std::time::Duration;

use napi::bindgen_prelude::Unknown;
use napi::{Env, JsValue};
use napi_derive::napi;

use crate::convert;
use crate::guard;

/// A manual (test) clock for lists and retry budgets (`new PeerList({clock})`,
/// `new RetryBudget({clock})`): it stands still until `advance(ms)`, which also runs what
/// came due (ejections end inside `advance`, and their `restored` events reach subscribers
/// before it returns).
#[napi]
pub struct ManualClock {
    pub(crate) inner: peerlb::ManualClock,
}

#[napi]
impl ManualClock {
    /// A manual clock reading the current instant.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ManualClock {
            inner: peerlb::ManualClock::new(),
        }
    }

    /// Moves the clock forward by `ms` (a finite number >= 0; fractions allowed; it
    /// saturates after ~584 years) and runs the timers that came due.
    #[napi(ts_args_type = "ms: number")]
    pub fn advance(&self, env: Env, ms: Unknown) -> napi::Result<()> {
        let ms: f64 = unsafe { convert::arg(env.raw(), ms.raw(), "advance(ms): ms")? };
        if !ms.is_finite() || ms < 0.0 {
            return Err(convert::invalid(
                &env,
                "advance(ms): ms",
                format!("must be a finite number >= 0, got {ms}"),
            ));
        }
        let by = Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX);
        guard::call(&env, || {
            self.inner.advance(by);
            Ok(())
        })
    }

    /// How far it has been advanced in total, in milliseconds.
    #[napi(getter)]
    pub fn elapsed_ms(&self) -> f64 {
        self.inner.elapsed().as_secs_f64() * 1000.0
    }
}
