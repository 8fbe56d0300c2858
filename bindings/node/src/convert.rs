//! Turning JS arguments into Rust values, with the errors the package promises:
//!
//! * a wrong **type** is a `TypeError` with `code: 'ERR_INVALID_ARG_TYPE'`;
//! * a wrong **value** the binding must judge while translating (a fractional weight, too
//!   many items) is `PEERLB_INVALID_ARGUMENT`, like the core's own checks;
//! * a getter (or proxy) that throws while an argument is read is `PEERLB_INVALID_ARGUMENT`
//!   naming what was read, with the thrown value as `cause`.
//!
//! Every value is read once. Arrays are walked with a bound ([`MAX_ITEMS`]) and never
//! pre-sized from their `length`: a sparse array stops at its first hole (a `TypeError`),
//! so neither a huge `length` nor a hole-filled array can hang or exhaust memory.

use std::ptr;
use std::time::Duration;

use napi::bindgen_prelude::{Either, Either3, FromNapiValue, Null, TypeName, ValidateNapiValue};
use napi::{sys, Env, Status, ValueType};
use peerlb::{Error, PeerSpec};

use crate::js;

/// The most items one array argument may have (peers of one update, backends, endpoints):
/// the core's bound for every binding.
pub const MAX_ITEMS: u32 = peerlb::MAX_ITEMS_PER_CALL as u32;

/// The status a conversion in this module gives for a wrong *value* (its reason is the
/// message of a `PEERLB_INVALID_ARGUMENT`); napi-rs itself never produces it.
const VALUE_ERROR: Status = Status::Cancelled;

/// A conversion error for a wrong value (see [`VALUE_ERROR`]).
pub fn value_error(message: String) -> napi::Error {
    napi::Error::new(VALUE_ERROR, message)
}

/// A conversion error for a wrong type.
pub fn type_mismatch(message: String) -> napi::Error {
    napi::Error::new(Status::InvalidArg, message)
}

/// Throws the JS error for a failed conversion of the argument `what` (see the module docs)
/// and returns the "exception pending" error for napi-rs.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn throw_conversion(env: sys::napi_env, what: &str, err: napi::Error) -> napi::Error {
    if let Some(thrown) = js::take_exception_value(env) {
        let message = format!("{what}: reading it threw: {}", js::describe(env, thrown));
        let e = js::error_value(env, &Error::InvalidArgument(message.clone()));
        if !e.is_null() {
            sys::napi_set_named_property(env, e, c"cause".as_ptr(), thrown);
        }
        return js::throw_value(env, e, &message);
    }
    if err.status == VALUE_ERROR {
        let e = Error::InvalidArgument(format!("{what}: {}", err.reason));
        return js::throw_value(env, js::error_value(env, &e), &e.to_string());
    }
    let message = format!("{what}: {}", friendly(&err.reason));
    js::throw_value(env, js::type_error_value(env, &message), &message)
}

/// napi-rs's conversion messages in JS words: `Failed to convert ... into rust type
/// `String` on RetryOptions.shardKey` becomes `shardKey must be a string`.
fn friendly(reason: &str) -> String {
    let (text, field) = match reason.rsplit_once(" on ") {
        Some((t, f)) if f.contains('.') && !f.contains(' ') => {
            (t, f.split_once('.').map(|(_, f)| f.to_owned()))
        }
        _ => (reason, None),
    };
    let js_type = |rust: &str| -> &'static str {
        match rust {
            "String" | "&str" => "a string",
            "f64" | "f32" | "u32" | "i32" | "i64" | "u64" => "a number",
            "bool" => "a boolean",
            "Null" | "null" => "null",
            "BigInt" => "a bigint",
            "Function" => "a function",
            _ => "an object",
        }
    };
    let mut types: Vec<&str> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.contains(' ') && !t.is_empty())
        .map(js_type)
        .collect();
    types.dedup();
    let expected = match types.len() {
        0 => None,
        1 => Some(types[0].to_owned()),
        n => Some(format!("{} or {}", types[..n - 1].join(", "), types[n - 1])),
    };
    match (field, expected) {
        (Some(f), Some(t)) => format!("{f} must be {t}"),
        (None, Some(t)) => format!("must be {t}"),
        (Some(f), None) => format!("{f}: {text}"),
        (None, None) => text.to_owned(),
    }
}

/// Converts `value` with napi-rs's [`FromNapiValue`], throwing as the module docs say.
///
/// An object (or array, or function) where a string, number or boolean is wanted is refused
/// before napi-rs sees it: napi-rs writes `String(value)` into its message, which for a
/// sparse array of a million holes takes a fifth of a second and for a proxy runs user code.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread; `value` a live value.
pub unsafe fn arg<T: FromNapiValue + TypeName>(
    env: sys::napi_env,
    value: sys::napi_value,
    what: &str,
) -> napi::Result<T> {
    let primitive = matches!(
        T::value_type(),
        ValueType::String | ValueType::Number | ValueType::Boolean
    );
    let ty = js::type_of(env, value);
    if primitive && (ty == sys::ValueType::napi_object || ty == sys::ValueType::napi_function) {
        let reason = format!(
            "Failed to convert JavaScript value `{}` into rust type `{}`",
            js::describe_arg(env, value),
            T::type_name()
        );
        return Err(throw_conversion(env, what, type_mismatch(reason)));
    }
    T::from_napi_value(env, value).map_err(|e| throw_conversion(env, what, e))
}

/// An options argument: `undefined`/`null` is `T::default()` (nothing given), a plain
/// object is converted field by field, anything else (an array too) is a `TypeError`.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread; `value` a live value or
/// null (an absent argument).
pub unsafe fn options<T: FromNapiValue + Default>(
    env: sys::napi_env,
    value: sys::napi_value,
    what: &str,
) -> napi::Result<T> {
    if value.is_null() {
        return Ok(T::default());
    }
    match js::type_of(env, value) {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(T::default()),
        sys::ValueType::napi_object if !is_array(env, value) => {
            T::from_napi_value(env, value).map_err(|e| throw_conversion(env, what, e))
        }
        _ => {
            let message = format!(
                "{what} must be an options object, got {}",
                js::describe_arg(env, value)
            );
            Err(js::throw_value(
                env,
                js::type_error_value(env, &message),
                &message,
            ))
        }
    }
}

/// Whether `value` is an array.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn is_array(env: sys::napi_env, value: sys::napi_value) -> bool {
    let mut out = false;
    sys::napi_is_array(env, value, &mut out);
    out
}

/// Walks an array with a bound: `f(index, item)` for each item, in order, each read once.
/// Not an array → type error; more than [`MAX_ITEMS`] → value error; a throwing element
/// getter → its exception stays pending (see [`throw_conversion`]).
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn each_item(
    env: sys::napi_env,
    value: sys::napi_value,
    mut f: impl FnMut(u32, sys::napi_value) -> napi::Result<()>,
) -> napi::Result<()> {
    if !is_array(env, value) {
        return Err(type_mismatch(format!(
            "must be an array, got {}",
            js::describe_arg(env, value)
        )));
    }
    let mut len = 0u32;
    napi::check_status!(sys::napi_get_array_length(env, value, &mut len))?;
    if len > MAX_ITEMS {
        return Err(value_error(format!(
            "an array of {len} items is too long (at most {MAX_ITEMS})"
        )));
    }
    for i in 0..len {
        let mut item = ptr::null_mut();
        let status = sys::napi_get_element(env, value, i, &mut item);
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                Status::PendingException,
                format!("reading item {i} failed"),
            ));
        }
        f(i, item)?;
    }
    Ok(())
}

/// How many items to reserve room for up front: never a caller-supplied length.
const RESERVE: usize = 1024;

/// A bounded array of strings (peer ids, backends, endpoints) read with [`each_item`];
/// `null` is "not given" (empty).
#[derive(Debug, Default, Clone)]
pub struct Strings(pub Vec<String>);

impl FromNapiValue for Strings {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        if js::type_of(env, value) == sys::ValueType::napi_null {
            return Ok(Strings::default());
        }
        let mut out = Vec::with_capacity(RESERVE);
        each_item(env, value, |i, item| {
            out.push(string_item(env, item, i)?);
            Ok(())
        })?;
        Ok(Strings(out))
    }
}

/// Item `i` of an array of strings.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn string_item(
    env: sys::napi_env,
    item: sys::napi_value,
    i: u32,
) -> napi::Result<String> {
    if js::type_of(env, item) != sys::ValueType::napi_string {
        return Err(type_mismatch(format!(
            "item {i} must be a string, got {}",
            hole_or(env, item)
        )));
    }
    js::string_value(env, item)
        .ok_or_else(|| type_mismatch(format!("item {i} is not a readable string")))
}

unsafe fn hole_or(env: sys::napi_env, item: sys::napi_value) -> String {
    match js::type_of(env, item) {
        sys::ValueType::napi_undefined => "undefined (a hole?)".into(),
        _ => js::describe_arg(env, item),
    }
}

/// A bounded array of peers: ids or `{id, weight, zone, priority}` objects (each property
/// read once; a missing one is left to the core's default). Weights and priorities must be
/// whole numbers in `0..=2^32-1` and zones strings; the core judges the rest (weight 0, bad
/// ids and zones). `null` is "not given" (empty).
#[derive(Debug, Default, Clone)]
pub struct PeerSpecs(pub Vec<PeerSpec>);

impl FromNapiValue for PeerSpecs {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        if js::type_of(env, value) == sys::ValueType::napi_null {
            return Ok(PeerSpecs::default());
        }
        let mut out = Vec::with_capacity(RESERVE);
        each_item(env, value, |i, item| {
            out.push(peer_item(env, item, i)?);
            Ok(())
        })?;
        Ok(PeerSpecs(out))
    }
}

/// Item `i` of an array of peers (see [`PeerSpecs`]).
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn peer_item(
    env: sys::napi_env,
    item: sys::napi_value,
    i: u32,
) -> napi::Result<PeerSpec> {
    let bad = |env| {
        type_mismatch(format!(
            "item {i} must be a peer id string or {{id, weight}}, got {}",
            hole_or(env, item)
        ))
    };
    match js::type_of(env, item) {
        sys::ValueType::napi_string => Ok(PeerSpec::new(
            js::string_value(env, item).ok_or_else(|| bad(env))?,
        )),
        sys::ValueType::napi_object => {
            let id = property(env, item, c"id")?;
            if js::type_of(env, id) != sys::ValueType::napi_string {
                return Err(type_mismatch(format!(
                    "item {i}: id must be a string, got {}",
                    js::describe_arg(env, id)
                )));
            }
            let id = js::string_value(env, id).ok_or_else(|| bad(env))?;
            let weight = property(env, item, c"weight")?;
            let mut spec = match js::type_of(env, weight) {
                sys::ValueType::napi_undefined => PeerSpec::new(id),
                sys::ValueType::napi_number => {
                    let w: f64 = f64::from_napi_value(env, weight)?;
                    let w = whole(w, u32::MAX as u64)
                        .map_err(|m| value_error(format!("item {i}: weight {m}")))?;
                    PeerSpec::weighted(id, w as u32)
                }
                _ => {
                    return Err(type_mismatch(format!(
                        "item {i}: weight must be a number, got {}",
                        js::describe_arg(env, weight)
                    )))
                }
            };
            let zone = property(env, item, c"zone")?;
            match js::type_of(env, zone) {
                sys::ValueType::napi_undefined | sys::ValueType::napi_null => {}
                sys::ValueType::napi_string => {
                    let zone = js::string_value(env, zone).ok_or_else(|| bad(env))?;
                    // As given: the core refuses an over-long zone or one with a NUL.
                    spec.zone = (!zone.is_empty()).then_some(zone);
                }
                _ => {
                    return Err(type_mismatch(format!(
                        "item {i}: zone must be a string, got {}",
                        js::describe_arg(env, zone)
                    )))
                }
            }
            let priority = property(env, item, c"priority")?;
            match js::type_of(env, priority) {
                sys::ValueType::napi_undefined | sys::ValueType::napi_null => {}
                sys::ValueType::napi_number => {
                    let p: f64 = f64::from_napi_value(env, priority)?;
                    spec.priority = whole(p, u32::MAX as u64)
                        .map_err(|m| value_error(format!("item {i}: priority {m}")))?
                        as u32;
                }
                _ => {
                    return Err(type_mismatch(format!(
                        "item {i}: priority must be a number, got {}",
                        js::describe_arg(env, priority)
                    )))
                }
            }
            Ok(spec)
        }
        _ => Err(bad(env)),
    }
}

/// Reads `object[name]` once; a throwing getter leaves its exception pending.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn property(
    env: sys::napi_env,
    object: sys::napi_value,
    name: &std::ffi::CStr,
) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    if sys::napi_get_named_property(env, object, name.as_ptr(), &mut out) != sys::Status::napi_ok {
        return Err(napi::Error::new(
            Status::PendingException,
            format!("reading {name:?} failed"),
        ));
    }
    Ok(out)
}

macro_rules! bounded_type {
    ($t:ty, $name:literal) => {
        impl TypeName for $t {
            fn type_name() -> &'static str {
                $name
            }
            fn value_type() -> ValueType {
                ValueType::Object
            }
        }
        impl ValidateNapiValue for $t {}
    };
}
bounded_type!(Strings, "Array<string>");
bounded_type!(PeerSpecs, "Array<PeerSpec>");

/// `v` as a whole number in `0..=max`, or the reason it is not one.
pub fn whole(v: f64, max: u64) -> Result<u64, String> {
    if v.is_finite() && v.fract() == 0.0 && v >= 0.0 && v <= max as f64 {
        Ok(v as u64)
    } else {
        Err(format!("must be an integer in 0..={max}, got {v}"))
    }
}

/// A duration in milliseconds: a finite number `>= 0` (fractions allowed; beyond ~30
/// years it saturates), or the reason it is not one.
pub fn millis(v: f64) -> Result<Duration, String> {
    if v.is_nan() || v < 0.0 {
        return Err(format!("must be a number of milliseconds >= 0, got {v}"));
    }
    Ok(Duration::try_from_secs_f64(v / 1000.0)
        .unwrap_or(Duration::from_secs(86_400 * 365 * 30))
        .min(Duration::from_secs(86_400 * 365 * 30)))
}

/// `Option<Either<T, Null>>` (a field that may be absent, `null` or a value) as an
/// `Option<T>`: absent and `null` both mean "not given".
pub trait Given<T> {
    /// The value, if one was given.
    fn given(self) -> Option<T>;
}

impl<T> Given<T> for Option<Either<T, Null>> {
    fn given(self) -> Option<T> {
        match self {
            Some(Either::A(v)) => Some(v),
            _ => None,
        }
    }
}

impl<A, B> Given<Either<A, B>> for Option<Either3<A, B, Null>> {
    fn given(self) -> Option<Either<A, B>> {
        match self {
            Some(Either3::A(v)) => Some(Either::A(v)),
            Some(Either3::B(v)) => Some(Either::B(v)),
            _ => None,
        }
    }
}

/// Throws `PEERLB_INVALID_ARGUMENT` for a wrong value found after conversion.
pub fn invalid(env: &Env, what: &str, reason: impl std::fmt::Display) -> napi::Error {
    js::throw(env, &Error::InvalidArgument(format!("{what} {reason}")))
}

/// The own enumerable keys of `object` whose values are not `undefined` and that are not
/// in `known`.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn unknown_keys(
    env: sys::napi_env,
    object: sys::napi_value,
    known: &[&str],
) -> napi::Result<Vec<String>> {
    let mut keys = ptr::null_mut();
    napi::check_status!(sys::napi_get_all_property_names(
        env,
        object,
        sys::KeyCollectionMode::own_only,
        sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
        sys::KeyConversion::numbers_to_strings,
        &mut keys,
    ))
    .map_err(|_| napi::Error::new(Status::PendingException, "listing keys failed"))?;
    let mut out = Vec::new();
    each_item(env, keys, |_, key| {
        let name = js::string_value(env, key).unwrap_or_default();
        if !known.contains(&name.as_str()) {
            let mut value = ptr::null_mut();
            if sys::napi_get_property(env, object, key, &mut value) != sys::Status::napi_ok {
                return Err(napi::Error::new(Status::PendingException, "reading failed"));
            }
            if js::type_of(env, value) != sys::ValueType::napi_undefined {
                out.push(name);
            }
        }
        Ok(())
    })?;
    Ok(out)
}
