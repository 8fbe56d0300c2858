//! Small raw N-API helpers: errors with a `code`, calling JS functions, reading exceptions.

use std::ffi::c_char;
use std::ptr;

use napi::sys;
use napi::{Env, Status};

/// The Node `code` for a core error code: `PEERLB_` + upper snake case.
pub fn node_code(code: peerlb::ErrorCode) -> String {
    format!(
        "PEERLB_{}",
        code.as_str().to_ascii_uppercase().replace('-', "_")
    )
}

/// Makes a JS string (null on failure).
pub unsafe fn string(env: sys::napi_env, s: &str) -> sys::napi_value {
    let mut out = ptr::null_mut();
    sys::napi_create_string_utf8(env, s.as_ptr() as *const c_char, s.len() as isize, &mut out);
    out
}

/// Builds a JS `Error` for a core error: `code` is `PEERLB_…`; a combined error also gets
/// `errors`, the individual errors (each an `Error` with its own `code`).
pub unsafe fn error_value(env: sys::napi_env, err: &peerlb::Error) -> sys::napi_value {
    let code = string(env, &node_code(err.code()));
    let msg = string(env, &err.to_string());
    let mut obj = ptr::null_mut();
    sys::napi_create_error(env, code, msg, &mut obj);
    if obj.is_null() {
        return obj;
    }
    if let peerlb::Error::Multiple(list) = err {
        let mut arr = ptr::null_mut();
        sys::napi_create_array_with_length(env, list.len(), &mut arr);
        for (i, e) in list.iter().enumerate() {
            let v = error_value(env, e);
            sys::napi_set_element(env, arr, i as u32, v);
        }
        sys::napi_set_named_property(env, obj, c"errors".as_ptr(), arr);
    }
    obj
}

/// Throws the core error as a JS `Error` and returns the napi-rs error that says
/// "an exception is already pending" (so napi-rs does not throw again).
pub fn throw(env: &Env, err: &peerlb::Error) -> napi::Error {
    unsafe {
        let v = error_value(env.raw(), err);
        if !v.is_null() {
            sys::napi_throw(env.raw(), v);
        }
    }
    napi::Error::new(Status::PendingException, err.to_string())
}

/// Throws a `TypeError` with code `ERR_INVALID_ARG_TYPE`.
pub fn type_error(env: &Env, msg: &str) -> napi::Error {
    let _ = env.throw_type_error(msg, Some("ERR_INVALID_ARG_TYPE"));
    napi::Error::new(Status::PendingException, msg.to_owned())
}

/// If a JS exception is pending, clears it and returns its text ("message" or String(e)).
pub unsafe fn take_exception(env: sys::napi_env) -> Option<String> {
    let mut pending = false;
    if sys::napi_is_exception_pending(env, &mut pending) != sys::Status::napi_ok || !pending {
        return None;
    }
    let mut exc = ptr::null_mut();
    sys::napi_get_and_clear_last_exception(env, &mut exc);
    Some(describe(env, exc))
}

/// A readable text for a thrown value: its `message` if it has one, else `String(value)`.
pub unsafe fn describe(env: sys::napi_env, value: sys::napi_value) -> String {
    if value.is_null() {
        return "unknown JS exception".into();
    }
    let mut ty = 0;
    sys::napi_typeof(env, value, &mut ty);
    let mut text = value;
    if ty == sys::ValueType::napi_object {
        let mut msg = ptr::null_mut();
        if sys::napi_get_named_property(env, value, c"message".as_ptr(), &mut msg)
            == sys::Status::napi_ok
        {
            let mut mty = 0;
            sys::napi_typeof(env, msg, &mut mty);
            if mty == sys::ValueType::napi_string {
                text = msg;
            }
        }
    }
    let mut s = ptr::null_mut();
    if sys::napi_coerce_to_string(env, text, &mut s) != sys::Status::napi_ok {
        // Coercion itself threw (e.g. a Symbol or a hostile toString): clear and give up.
        let mut ignored = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut ignored);
        return "JS exception (not convertible to a string)".into();
    }
    string_value(env, s).unwrap_or_else(|| "JS exception".into())
}

/// Reads a JS string.
pub unsafe fn string_value(env: sys::napi_env, s: sys::napi_value) -> Option<String> {
    let mut len = 0usize;
    if sys::napi_get_value_string_utf8(env, s, ptr::null_mut(), 0, &mut len) != sys::Status::napi_ok
    {
        return None;
    }
    let mut buf = vec![0u8; len + 1];
    let mut written = 0usize;
    sys::napi_get_value_string_utf8(
        env,
        s,
        buf.as_mut_ptr() as *mut c_char,
        buf.len(),
        &mut written,
    );
    buf.truncate(written);
    Some(String::from_utf8_lossy(&buf).into_owned())
}
