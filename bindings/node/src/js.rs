//! Small raw N-API helpers: errors with a `code`, strings, reading exceptions, describing
//! values for error messages.

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
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn string(env: sys::napi_env, s: &str) -> sys::napi_value {
    let mut out = ptr::null_mut();
    sys::napi_create_string_utf8(env, s.as_ptr() as *const c_char, s.len() as isize, &mut out);
    out
}

/// `undefined`.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn undefined(env: sys::napi_env) -> sys::napi_value {
    let mut out = ptr::null_mut();
    sys::napi_get_undefined(env, &mut out);
    out
}

/// Builds a JS `Error` for a core error: `code` is `PEERLB_…`; a combined error also gets
/// `errors`, the individual errors (each an `Error` with its own `code`); an error about
/// one peer gets `peer`, and a remote-system error (a declined or failed attempt) also
/// `remoteCode`, the remote system's own code, or `null` when it gave none.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
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
    if let Some(peer) = err.peer() {
        sys::napi_set_named_property(env, obj, c"peer".as_ptr(), string(env, peer));
    }
    if let peerlb::Error::RemoteSystem(remote) = err {
        let mut code = ptr::null_mut();
        match remote.code {
            Some(c) => sys::napi_create_double(env, c as f64, &mut code),
            None => sys::napi_get_null(env, &mut code),
        };
        sys::napi_set_named_property(env, obj, c"remoteCode".as_ptr(), code);
    }
    obj
}

/// A `TypeError` with `code: 'ERR_INVALID_ARG_TYPE'` (Node's code for a wrong argument type).
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn type_error_value(env: sys::napi_env, msg: &str) -> sys::napi_value {
    let code = string(env, "ERR_INVALID_ARG_TYPE");
    let msg = string(env, msg);
    let mut obj = ptr::null_mut();
    sys::napi_create_type_error(env, code, msg, &mut obj);
    obj
}

/// Throws `value` unless an exception is already pending, and returns the napi-rs error
/// that says "an exception is already pending" (so napi-rs does not throw again).
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn throw_value(env: sys::napi_env, value: sys::napi_value, text: &str) -> napi::Error {
    let mut pending = false;
    sys::napi_is_exception_pending(env, &mut pending);
    if !pending && !value.is_null() {
        sys::napi_throw(env, value);
    }
    napi::Error::new(Status::PendingException, text.to_owned())
}

/// Throws the core error as a JS `Error` (see [`error_value`]).
pub fn throw(env: &Env, err: &peerlb::Error) -> napi::Error {
    unsafe { throw_value(env.raw(), error_value(env.raw(), err), &err.to_string()) }
}

/// Throws a `TypeError` with code `ERR_INVALID_ARG_TYPE`.
pub fn type_error(env: &Env, msg: &str) -> napi::Error {
    unsafe { throw_value(env.raw(), type_error_value(env.raw(), msg), msg) }
}

/// If a JS exception is pending, clears it and returns it.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn take_exception_value(env: sys::napi_env) -> Option<sys::napi_value> {
    let mut pending = false;
    if sys::napi_is_exception_pending(env, &mut pending) != sys::Status::napi_ok || !pending {
        return None;
    }
    let mut exc = ptr::null_mut();
    sys::napi_get_and_clear_last_exception(env, &mut exc);
    Some(exc)
}

/// If a JS exception is pending, clears it and returns its text ("message" or String(e)).
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn take_exception(env: sys::napi_env) -> Option<String> {
    take_exception_value(env).map(|exc| describe(env, exc))
}

/// A readable text for a thrown value: its `message` if it has one, else `String(value)`.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
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
        } else {
            // A `message` getter threw: forget it, fall back to String(value).
            let mut ignored = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut ignored);
        }
    }
    let mut s = ptr::null_mut();
    if sys::napi_coerce_to_string(env, text, &mut s) != sys::Status::napi_ok {
        // Coercion itself threw (e.g. a Symbol or a hostile toString): clear and give up.
        let mut ignored = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut ignored);
        return "a value that cannot be converted to a string".into();
    }
    string_value(env, s).unwrap_or_else(|| "JS exception".into())
}

/// A short description of an argument for a `TypeError` message: `number 5`,
/// `string "x"`, `an object`, `an array`, `null`, `undefined`, `a symbol`, ...
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn describe_arg(env: sys::napi_env, value: sys::napi_value) -> String {
    let mut ty = 0;
    if sys::napi_typeof(env, value, &mut ty) != sys::Status::napi_ok {
        return "an unknown value".into();
    }
    match ty {
        sys::ValueType::napi_undefined => "undefined".into(),
        sys::ValueType::napi_null => "null".into(),
        sys::ValueType::napi_symbol => "a symbol".into(),
        sys::ValueType::napi_function => "a function".into(),
        sys::ValueType::napi_object => {
            let mut is_array = false;
            sys::napi_is_array(env, value, &mut is_array);
            if is_array { "an array" } else { "an object" }.into()
        }
        sys::ValueType::napi_string => {
            let s = string_value(env, value).unwrap_or_default();
            let mut short: String = s.chars().take(40).collect();
            if short.len() < s.len() {
                short.push('…');
            }
            format!("string {short:?}")
        }
        _ => {
            let name = match ty {
                sys::ValueType::napi_number => "number",
                sys::ValueType::napi_boolean => "boolean",
                sys::ValueType::napi_bigint => "bigint",
                _ => "value",
            };
            let mut s = ptr::null_mut();
            if sys::napi_coerce_to_string(env, value, &mut s) != sys::Status::napi_ok {
                let mut ignored = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut ignored);
                return name.into();
            }
            format!("{name} {}", string_value(env, s).unwrap_or_default())
        }
    }
}

/// Reads a JS string.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
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
    // napi writes UTF-8 (lone surrogates become U+FFFD), so this never copies again.
    Some(
        String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// The type of a JS value (`napi_undefined` when it cannot be read).
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn type_of(env: sys::napi_env, value: sys::napi_value) -> sys::napi_valuetype {
    let mut ty = sys::ValueType::napi_undefined;
    sys::napi_typeof(env, value, &mut ty);
    ty
}

/// `String(value)` (a value that cannot be converted gives a placeholder text).
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn describe_plain(env: sys::napi_env, value: sys::napi_value) -> String {
    let mut s = ptr::null_mut();
    if sys::napi_coerce_to_string(env, value, &mut s) != sys::Status::napi_ok {
        let mut ignored = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut ignored);
        return "a value that cannot be converted to a string".into();
    }
    string_value(env, s).unwrap_or_default()
}
