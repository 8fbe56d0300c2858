//! The hot path: `choose0`, `choose`, `chooseAsync`, `finish`, `finish0` and `release` are plain N-API
//! callbacks on a list's numeric id (see [`crate::registry`]) that pass a choice as one
//! number (see [`crate::table`]). napi-rs's generated wrappers set up borrow-tracking scopes
//! per call (~150 ns with arguments), which would dominate a choose + finish.
//!
//! Arguments come from `index.js` as given by the user where they are cheap to check here
//! (an options object has already been taken apart): a wrong type is a `TypeError`, a wrong
//! value `PEERLB_INVALID_ARGUMENT`, a caught panic `PEERLB_INTERNAL`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::time::Duration;

use napi::bindgen_prelude::ToNapiValue;
use napi::{sys, Env, JsValue};
use peerlb::{NowOrLater, Outcome, Request};

use crate::guard::caught;
use crate::js;
use crate::registry::{no_such_list, with_entry, Entry};
use crate::transport::EnvScope;

/// The first `N` arguments (missing ones `undefined`).
unsafe fn args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> [sys::napi_value; N] {
    args_and_count::<N>(env, info).0
}

/// The first `N` arguments (missing ones `undefined`) and how many were passed.
#[inline(always)]
unsafe fn args_and_count<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> ([sys::napi_value; N], usize) {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    if argc < N {
        let undef = js::undefined(env);
        for a in argv.iter_mut().skip(argc) {
            *a = undef;
        }
    }
    (argv, argc)
}

/// A list id (any non-number reads as an id no list has).
unsafe fn list_id(env: sys::napi_env, v: sys::napi_value) -> u32 {
    let mut out = u32::MAX;
    if sys::napi_get_value_uint32(env, v, &mut out) != sys::Status::napi_ok {
        return u32::MAX;
    }
    out
}

/// A token (any non-number reads as no token).
unsafe fn token(env: sys::napi_env, v: sys::napi_value) -> f64 {
    let mut out = -1.0;
    if sys::napi_get_value_double(env, v, &mut out) != sys::Status::napi_ok {
        return -1.0;
    }
    out
}

/// What went wrong with an argument.
enum Bad {
    Type(String),
    Value(peerlb::Error),
}

impl From<peerlb::Error> for Bad {
    fn from(e: peerlb::Error) -> Bad {
        Bad::Value(e)
    }
}

unsafe fn throw(env: sys::napi_env, bad: Bad) -> sys::napi_value {
    let value = match &bad {
        Bad::Type(m) => js::type_error_value(env, m),
        Bad::Value(e) => js::error_value(env, e),
    };
    let mut pending = false;
    sys::napi_is_exception_pending(env, &mut pending);
    if !pending {
        sys::napi_throw(env, value);
    }
    ptr::null_mut()
}

/// A number of milliseconds or nothing (`undefined`/`null`); `what` names it in errors.
unsafe fn optional_ms(
    env: sys::napi_env,
    v: sys::napi_value,
    what: &str,
) -> Result<Option<Duration>, Bad> {
    let mut ms = 0.0;
    if sys::napi_get_value_double(env, v, &mut ms) == sys::Status::napi_ok {
        return crate::convert::millis(ms)
            .map(Some)
            .map_err(|m| Bad::Value(peerlb::Error::InvalidArgument(format!("{what} {m}"))));
    }
    match js::type_of(env, v) {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(None),
        _ => Err(Bad::Type(format!(
            "{what} must be a number, got {}",
            js::describe_arg(env, v)
        ))),
    }
}

/// A shard key: a string, a `Uint8Array` (a `Buffer` too) or nothing.
unsafe fn shard_key(env: sys::napi_env, v: sys::napi_value) -> Result<Option<Vec<u8>>, Bad> {
    match js::type_of(env, v) {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => return Ok(None),
        sys::ValueType::napi_string => {
            return Ok(js::string_value(env, v).map(String::into_bytes));
        }
        sys::ValueType::napi_object => {
            let mut is_ta = false;
            sys::napi_is_typedarray(env, v, &mut is_ta);
            let (mut kind, mut len, mut data) = (0, 0usize, ptr::null_mut());
            if is_ta
                && sys::napi_get_typedarray_info(
                    env,
                    v,
                    &mut kind,
                    &mut len,
                    &mut data,
                    ptr::null_mut(),
                    ptr::null_mut(),
                ) == sys::Status::napi_ok
                && kind == sys::TypedarrayType::uint8_array
            {
                return Ok(Some(if len == 0 || data.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(data as *const u8, len).to_vec()
                }));
            }
        }
        _ => {}
    }
    Err(Bad::Type(format!(
        "shardKey must be a string or a Uint8Array/Buffer, got {}",
        js::describe_arg(env, v)
    )))
}

fn request(timeout: Option<Duration>, key: Option<&[u8]>) -> Request<'_> {
    let mut req = Request::new();
    if let Some(t) = timeout {
        req = req.with_timeout(t);
    }
    if let Some(k) = key {
        req = req.with_shard_key(k);
    }
    req
}

/// Stores a choice in its list's table: its token.
pub(crate) fn store(entry: &Entry, choice: peerlb::Choice) -> peerlb::Result<f64> {
    let stored = entry.table.borrow_mut().insert(choice);
    stored.map_err(|choice| {
        // Dropped outside the table's borrow: cancelled.
        drop(choice);
        table_full()
    })
}

/// The error for a choice that the list's table has no room for.
#[cold]
fn table_full() -> peerlb::Error {
    peerlb::Error::InvalidArgument(format!(
        "more than {} choices of this list are unfinished; finish or cancel them",
        crate::table::MAX_PENDING
    ))
}

unsafe fn token_value(env: sys::napi_env, t: f64) -> sys::napi_value {
    let mut out = ptr::null_mut();
    sys::napi_create_double(env, t, &mut out);
    out
}

/// What the fast path of `choose0` found: small, so that nothing the size of the core's
/// `Error` crosses the unwind boundary (or is copied) when a peer is available.
enum Fast {
    /// Chosen and stored: the token.
    Token(f64),
    /// No peer now (or no such list): the slow path decides what to answer.
    Slow,
    /// Chosen, but the table is full: the choice was dropped (cancelled).
    Full,
}

/// `choose0(id)`: chooses with no deadline and no shard key; returns the token.
///
/// The fast path asks the strategy for a peer now (`PeerList::try_choose`: no deadline to
/// compute, no clock read) and stores the choice; everything else goes to
/// [`choose0_slow`].
pub(crate) unsafe extern "C" fn choose0(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let [id] = args::<1>(env, info);
    let id = list_id(env, id);
    let fast = catch_unwind(AssertUnwindSafe(|| {
        with_entry(id, |e| match e.list.try_choose(&Request::new()) {
            Some(choice) => {
                let stored = e.table.borrow_mut().insert(choice);
                match stored {
                    Ok(t) => Fast::Token(t),
                    // Dropped outside the table's borrow: cancelled.
                    Err(choice) => {
                        drop(choice);
                        Fast::Full
                    }
                }
            }
            None => Fast::Slow,
        })
        .unwrap_or(Fast::Slow)
    }));
    match fast {
        Ok(Fast::Token(t)) => token_value(env, t),
        Ok(Fast::Slow) => choose0_slow(env, id),
        Ok(Fast::Full) => throw(env, Bad::Value(table_full())),
        Err(panic) => throw(env, Bad::Value(peerlb::Error::from_panic(&*panic))),
    }
}

/// `choose0` when no peer was available at once: the core answers (chosen after all, or
/// the error: not started, no deadline, fail-fast, no such list).
#[cold]
#[inline(never)]
unsafe fn choose0_slow(env: sys::napi_env, id: u32) -> sys::napi_value {
    let result = caught(|| {
        with_entry(id, |e| {
            let choice = e.list.choose(&Request::new())?;
            store(e, choice)
        })
        .unwrap_or_else(|| Err(no_such_list(id)))
    });
    match result {
        Ok(t) => token_value(env, t),
        Err(e) => throw(env, Bad::Value(e)),
    }
}

/// `choose(id, timeoutMs, shardKey)`: chooses, blocking up to `timeoutMs` when no peer is
/// available; returns the token.
pub(crate) unsafe extern "C" fn choose(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let [id, timeout, key] = args::<3>(env, info);
    let id = list_id(env, id);
    let parsed = optional_ms(env, timeout, "timeoutMs").and_then(|t| Ok((t, shard_key(env, key)?)));
    let (timeout, key) = match parsed {
        Ok(v) => v,
        Err(bad) => return throw(env, bad),
    };
    let req = request(timeout, key.as_deref());
    let result = caught(|| {
        with_entry(id, |e| {
            let choice = e.list.choose(&req)?;
            store(e, choice)
        })
        .unwrap_or_else(|| Err(no_such_list(id)))
    });
    match result {
        Ok(t) => token_value(env, t),
        Err(e) => throw(env, Bad::Value(e)),
    }
}

/// The answer of an async choose, delivered on the JS thread: a token, or an `Error`
/// value (the wrapper rejects with it).
struct AsyncChoice {
    result: peerlb::Result<peerlb::Choice>,
    id: u32,
    serial: u64,
}

impl ToNapiValue for AsyncChoice {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let (id, serial) = (val.id, val.serial);
        let result = val.result.and_then(|choice| {
            // The choice is dropped (cancelled) if its list is gone.
            with_entry(id, move |e| (e.serial == serial).then(|| store(e, choice)))
                .flatten()
                .unwrap_or_else(|| {
                    Err(peerlb::Error::NotStarted(
                        "the peer list was garbage-collected".into(),
                    ))
                })
        });
        Ok(match result {
            Ok(t) => token_value(env, t),
            Err(e) => js::error_value(env, &e),
        })
    }
}

/// What an async choose knows at once.
enum First {
    Now(f64),
    Later(peerlb::Later<peerlb::Result<peerlb::Choice>>, u64),
}

/// `chooseAsync(id, timeoutMs, shardKey)`: chooses without blocking. Returns the token at
/// once when the answer is known at once (or throws its error), else a Promise of the
/// token or of an `Error`.
pub(crate) unsafe extern "C" fn choose_async(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let [id, timeout, key] = args::<3>(env, info);
    let id = list_id(env, id);
    let parsed = optional_ms(env, timeout, "timeoutMs").and_then(|t| Ok((t, shard_key(env, key)?)));
    let (timeout, key) = match parsed {
        Ok(v) => v,
        Err(bad) => return throw(env, bad),
    };
    let req = request(timeout, key.as_deref());
    let first = caught(|| {
        with_entry(id, |e| match e.list.choose_now(&req) {
            NowOrLater::Now(result) => result.and_then(|c| store(e, c)).map(First::Now),
            NowOrLater::Later(later) => Ok(First::Later(later, e.serial)),
        })
        .unwrap_or_else(|| Err(no_such_list(id)))
    });
    match first {
        Err(e) => throw(env, Bad::Value(e)),
        Ok(First::Now(t)) => token_value(env, t),
        Ok(First::Later(later, serial)) => {
            let env_ = Env::from_raw(env);
            let (deferred, promise) = match env_.create_deferred() {
                Ok(d) => d,
                Err(e) => {
                    return throw(
                        env,
                        Bad::Value(peerlb::Error::Internal(format!(
                            "cannot create a promise: {e}"
                        ))),
                    )
                }
            };
            peerlb::runtime::handle().spawn(async move {
                let result = later.await;
                deferred.resolve(move |_env| Ok(AsyncChoice { result, id, serial }));
            });
            promise.raw()
        }
    }
}

/// The outcomes by the numbers `index.js` passes (see [`outcome_code`]).
const OUTCOMES: [Outcome; 4] = [
    Outcome::Ok,
    Outcome::Failure,
    Outcome::Declined,
    Outcome::Cancelled,
];

/// An outcome's number, for `index.js` to pass to `finish`: the core parses the name
/// (`'ok'`, `'failure'`, `'declined'`, `'cancelled'`; anything else is refused).
pub(crate) fn outcome_code(name: &str) -> peerlb::Result<u32> {
    let outcome: Outcome = name.parse()?;
    Ok(OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0) as u32)
}

unsafe fn outcome(env: sys::napi_env, v: sys::napi_value) -> Result<Outcome, Bad> {
    let mut code = u32::MAX;
    if sys::napi_get_value_uint32(env, v, &mut code) == sys::Status::napi_ok {
        if let Some(o) = OUTCOMES.get(code as usize) {
            return Ok(*o);
        }
    }
    Err(Bad::Type(format!(
        "finish: outcome code must be 0..=3, got {}",
        js::describe_arg(env, v)
    )))
}

/// A load report: ORCA text (`index.js` turns a fields object into it), parsed and judged
/// by the core; `undefined`/`null` is none.
unsafe fn load_report(
    env: sys::napi_env,
    v: sys::napi_value,
) -> Result<Option<peerlb::LoadReport>, Bad> {
    let mut ty = 0;
    sys::napi_typeof(env, v, &mut ty);
    match ty {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(None),
        sys::ValueType::napi_string => {
            let text = js::string_value(env, v)
                .ok_or_else(|| Bad::Type("finish: load is not a readable string".into()))?;
            Ok(Some(peerlb::LoadReport::from_orca(&text)?))
        }
        _ => Err(Bad::Type(format!(
            "finish: load must be ORCA text or an object of requestsInFlight, utilization, qps, eps, got {}",
            js::describe_arg(env, v)
        ))),
    }
}

/// `finish(id, token, outcome[, latencyMs[, load]])`: finishes the pending choice of
/// `token`, with the backend's load report (ORCA text) when given.
/// Returns true, or false when the token is spent (finished before, or a stale copy):
/// the wrapper throws `PEERLB_ALREADY_FINISHED` then. (`index.js` leaves `latencyMs` out
/// when it is not given, which saves reading it.)
pub(crate) unsafe extern "C" fn finish(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let ([id, t, out, latency, load], argc) = args_and_count::<5>(env, info);
    let id = list_id(env, id);
    let t = token(env, t);
    let parsed = outcome(env, out).and_then(|o| {
        let latency = if argc < 4 {
            None
        } else {
            optional_ms(env, latency, "finish(outcome, latencyMs): latencyMs")?
        };
        let load = if argc < 5 {
            None
        } else {
            load_report(env, load)?
        };
        Ok((o, latency, load))
    });
    match parsed {
        Ok((outcome, latency, load)) => finish_parsed(env, id, t, outcome, latency, load),
        Err(bad) => throw(env, bad),
    }
}

/// `finish0(id, token)`: `finish()` with no arguments (`'ok'`, no latency, no load
/// report), the common case, with two arguments to read instead of five.
pub(crate) unsafe extern "C" fn finish0(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let [id, t] = args::<2>(env, info);
    finish_parsed(
        env,
        list_id(env, id),
        token(env, t),
        Outcome::Ok,
        None,
        None,
    )
}

/// Finishes the pending choice of `token` in list `id`; returns JS true, or false when the
/// token is spent.
#[inline(always)]
unsafe fn finish_parsed(
    env: sys::napi_env,
    id: u32,
    t: f64,
    outcome: Outcome,
    latency: Option<Duration>,
    load: Option<peerlb::LoadReport>,
) -> sys::napi_value {
    // A failure may eject the peer: its event reaches JS subscribers before this returns.
    let _scope = EnvScope::enter(env);
    // A bool crosses the unwind boundary, not a `Result` of the core's `Error`.
    let done = catch_unwind(AssertUnwindSafe(|| {
        let choice = with_entry(id, |e| e.table.borrow_mut().take(t)).flatten();
        // Finished outside every borrow: its events may run JS that uses this list.
        choice
            .map(|c| c.finish_with_load(outcome, latency, load.as_ref()))
            .is_some()
    }));
    match done {
        Ok(done) => {
            let mut out = ptr::null_mut();
            sys::napi_get_boolean(env, done, &mut out);
            out
        }
        Err(panic) => throw(env, Bad::Value(peerlb::Error::from_panic(&*panic))),
    }
}

/// `release(id, token)`: cancels the pending choice of `token` if the token is still
/// current (the finalizer of a garbage-collected `Choice`); never throws.
pub(crate) unsafe extern "C" fn release(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let [id, t] = args::<2>(env, info);
    let id = list_id(env, id);
    let t = token(env, t);
    let _scope = EnvScope::enter(env);
    let _ = caught(|| {
        let choice = with_entry(id, |e| e.table.borrow_mut().take(t)).flatten();
        drop(choice);
        Ok(())
    });
    js::undefined(env)
}

/// `noopRaw()`: an empty plain N-API callback, for benchmarks.
pub(crate) unsafe extern "C" fn noop(
    env: sys::napi_env,
    _info: sys::napi_callback_info,
) -> sys::napi_value {
    js::undefined(env)
}

/// The plain functions, by name, for the module's exports.
pub(crate) const FUNCTIONS: [(&std::ffi::CStr, sys::napi_callback); 7] = [
    (c"choose0", Some(choose0)),
    (c"choose", Some(choose)),
    (c"chooseAsync", Some(choose_async)),
    (c"finish", Some(finish)),
    (c"finish0", Some(finish0)),
    (c"release", Some(release)),
    (c"noopRaw", Some(noop)),
];
