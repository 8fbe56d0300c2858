//! The boundary every entry point crosses into the core: a panic caught here becomes the
//! core's `internal` error (`PEERLB_INTERNAL`, with the panic's message), never an abort, a
//! `false` or an unrelated code. Calls made on the JS thread also mark "inside a binding
//! call with this env" ([`EnvScope`]), so that the core's calls into JS transports and
//! event subscribers go straight to JS.

use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::Env;

use crate::js;
use crate::transport::EnvScope;

/// Runs `f`, turning a panic into [`peerlb::ErrorCode::Internal`].
#[inline(always)]
pub(crate) fn caught<T>(f: impl FnOnce() -> peerlb::Result<T>) -> peerlb::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(peerlb::Error::from_panic(&*p)))
}

/// Runs `f` on the JS thread inside an [`EnvScope`], throwing its error (or a caught panic)
/// as a `PEERLB_*` JS error.
pub(crate) fn call<T>(env: &Env, f: impl FnOnce() -> peerlb::Result<T>) -> napi::Result<T> {
    let _scope = EnvScope::enter(env.raw());
    caught(f).map_err(|e| js::throw(env, &e))
}
