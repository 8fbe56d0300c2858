//! The native half of the Node package `peerlb`: a napi-rs addon over the `peerlb` core.
//!
//! Most of the public API is here, as napi-rs classes whose option objects are
//! `#[napi(object)]` structs (their TypeScript types are generated into `native.d.ts`):
//! `NativeList` (extended by `PeerList` in `index.js`), `ManualClock`, `RetryBudget`,
//! `Subscriber`, the updaters and `Binding`, `NativeUpstream` (extended by `Upstream`).
//! `index.js` keeps what JS must do: the hot path's `Choice` objects and their finalizer,
//! Promises, `Symbol.dispose`, the event dispatcher and the retry loop around user code.
//!
//! The hot path is plain N-API functions on a numeric list id, passing a choice as one
//! number ([`hot`], [`table`]), so a `choose` + `finish` costs two cheap calls.
#![deny(clippy::all)]

mod clock;
mod codes;
mod convert;
mod events;
mod guard;
mod hot;
mod js;
mod list;
mod list_options;
mod offload;
pub mod ops;
mod pending_update;
mod registry;
mod request_rule;
mod retry;
mod session;
mod subscriber;
pub mod subset;
mod table;
mod transport;
mod updater;
pub mod upstream;

use napi::bindgen_prelude::{Object, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;

use crate::codes::{PeerlbErrorCode, StrategyName};

/// Adds the plain N-API functions of the hot path to the module's exports.
#[napi(module_exports)]
pub fn init(exports: Object, env: Env) -> napi::Result<()> {
    for (name, cb) in hot::FUNCTIONS {
        let mut f = std::ptr::null_mut();
        unsafe {
            napi::check_status!(sys::napi_create_function(
                env.raw(),
                name.as_ptr(),
                name.to_bytes().len() as isize,
                cb,
                std::ptr::null_mut(),
                &mut f,
            ))?;
            napi::check_status!(sys::napi_set_named_property(
                env.raw(),
                exports.raw(),
                name.as_ptr(),
                f
            ))?;
        }
    }
    Ok(())
}

/// Does nothing: the baseline "empty call into the addon" for benchmarks.
#[napi]
pub fn noop() {}

/// The core library's version.
#[napi]
pub fn core_version() -> String {
    peerlb::VERSION.to_string()
}

/// Every core error code as `[kebab, node]` pairs, e.g. `['timeout', 'PEERLB_TIMEOUT']`.
#[napi(ts_return_type = "Array<[string, PeerlbErrorCode]>")]
pub fn error_codes() -> Vec<Vec<String>> {
    peerlb::ErrorCode::ALL
        .iter()
        .map(|c| vec![c.as_str().to_string(), js::node_code(*c)])
        .collect()
}

/// The balancer's admin result numbers by name: `[['success', 1], ['no-action-required',
/// 3], ['failed', 4]]` (the core's).
#[napi(ts_return_type = "Array<[string, number]>")]
pub fn admin_result_codes() -> Vec<(String, u32)> {
    use peerlb::AdminResult;
    vec![
        (
            AdminResult::Success.as_str().into(),
            AdminResult::Success.as_u32(),
        ),
        (
            AdminResult::NoActionRequired.as_str().into(),
            AdminResult::NoActionRequired.as_u32(),
        ),
        ("failed".into(), peerlb::admin::RESULT_FAILED),
    ]
}

/// Every core error code as the Node code the types name (for the types test).
#[napi(skip_typescript)]
pub fn typed_error_codes() -> Vec<PeerlbErrorCode> {
    peerlb::ErrorCode::ALL
        .iter()
        .map(|c| PeerlbErrorCode::from(*c))
        .collect()
}

/// The built-in strategies, as the core lists them.
#[napi(skip_typescript)]
pub fn strategy_names() -> Vec<StrategyName> {
    peerlb::StrategyKind::ALL
        .iter()
        .map(|k| StrategyName::from(*k))
        .collect()
}

/// The core's names of the built-in strategies (what `strategyNames()` must spell).
#[napi(skip_typescript)]
pub fn core_strategy_names() -> Vec<&'static str> {
    peerlb::StrategyKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect()
}

/// The number `finish` takes for `outcome` (`'ok'` 0, `'failure'` 1, `'declined'` 2,
/// `'cancelled'` 3); anything else throws (a non-string a TypeError).
#[napi(skip_typescript)]
pub fn outcome_code(env: Env, outcome: Unknown) -> napi::Result<u32> {
    let what = "finish(outcome): outcome";
    let name: String = unsafe { convert::arg(env.raw(), outcome.raw(), what)? };
    hot::outcome_code(&name).map_err(|e| js::throw(&env, &e))
}

/// The error for finishing the choice of `peer` a second time (`PEERLB_ALREADY_FINISHED`).
#[napi(skip_typescript)]
pub fn already_finished(env: Env, peer: String) -> sys::napi_value {
    let e = peerlb::Error::already_finished(&peer);
    unsafe { js::error_value(env.raw(), &e) }
}

/// The error for a `retry` attempt to throw when the peer declined on purpose (e.g.
/// overload): code PEERLB_DECLINED; the call stops at once and the peer is not penalized.
/// `message` (default 'declined') is converted with `String()`; `options.remoteCode`, the
/// remote system's own code (e.g. HTTP 401), becomes the final error's `remoteCode` (any
/// error an attempt throws may carry a numeric `remoteCode`).
#[napi(
    ts_args_type = "message?: string, options?: { remoteCode?: number | null }",
    ts_return_type = "Error & { code: 'PEERLB_DECLINED'; remoteCode?: number }"
)]
pub fn declined(
    env: Env,
    message: Option<Unknown>,
    options: Option<Unknown>,
) -> napi::Result<sys::napi_value> {
    let raw = env.raw();
    let text = match message {
        Some(m) if unsafe { js::type_of(raw, m.raw()) } != sys::ValueType::napi_undefined => unsafe {
            js::describe_plain(raw, m.raw())
        },
        _ => "declined".to_owned(),
    };
    let e = peerlb::Error::Declined(text);
    let error = unsafe { js::error_value(raw, &e) };
    let code = match options {
        Some(o) if unsafe { js::type_of(raw, o.raw()) } == sys::ValueType::napi_object => unsafe {
            // A getter or proxy that throws is PEERLB_INVALID_ARGUMENT, as for any argument.
            let v = convert::property(raw, o.raw(), c"remoteCode")
                .map_err(|e| convert::throw_conversion(raw, "declined(options).remoteCode", e))?;
            retry::remote_code_of(raw, v)
        },
        _ => None,
    };
    if let Some(code) = code {
        unsafe {
            let mut v = std::ptr::null_mut();
            sys::napi_create_double(raw, code as f64, &mut v);
            sys::napi_set_named_property(raw, error, c"remoteCode".as_ptr(), v);
        }
    }
    Ok(error)
}

/// Throws what a panic caught at the boundary becomes (`PEERLB_INTERNAL`); for tests.
#[napi(skip_typescript)]
pub fn internal_error_for_test(env: Env) -> napi::Result<()> {
    guard::call(&env, || -> peerlb::Result<()> {
        panic!("a panic the test asked for");
    })
}
