//! `PendingUpdate`: the arguments of `updateAsync`, read a slice at a time. Reading JS
//! values can only happen on the JS thread, and 100 000 peer ids take tens of milliseconds
//! to read; `index.js` reads one slice per turn of the event loop (a few milliseconds
//! each), then hands the converted change to a library thread. Each item is still read
//! once; the arrays' lengths are read (and bounded) when it is made.

use std::ptr;

use napi::bindgen_prelude::{AsyncTask, ClassInstance, FromNapiValue, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use peerlb::PeerSpec;

use crate::convert::{self, MAX_ITEMS};
use crate::list::NativeList;
use crate::offload::{Offload, Work};

const WHAT: &str = "updateAsync(changes)";

/// One array being read: a reference to it, its length, and the next index.
struct Source {
    array: sys::napi_ref,
    len: u32,
    next: u32,
}

/// The arguments of one `updateAsync` call (internal; see `PeerList.updateAsync`).
#[napi]
pub struct PendingUpdate {
    env: sys::napi_env,
    add: Option<Source>,
    remove: Option<Source>,
    adds: Vec<PeerSpec>,
    removes: Vec<String>,
}

impl Drop for PendingUpdate {
    fn drop(&mut self) {
        // Dropped by its finalizer or after `apply`, on the JS thread.
        for s in [self.add.take(), self.remove.take()].into_iter().flatten() {
            unsafe { sys::napi_delete_reference(self.env, s.array) };
        }
    }
}

/// The array at `changes[name]`, if given (`undefined`/`null` = not given).
unsafe fn source(
    env: sys::napi_env,
    changes: sys::napi_value,
    name: &std::ffi::CStr,
) -> napi::Result<Option<Source>> {
    let what = format!("{WHAT}: {}", name.to_str().unwrap_or("?"));
    let value = convert::property(env, changes, name)
        .map_err(|e| convert::throw_conversion(env, &what, e))?;
    match crate::js::type_of(env, value) {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => return Ok(None),
        _ if convert::is_array(env, value) => {}
        _ => {
            let e = convert::type_mismatch(format!(
                "must be an array, got {}",
                crate::js::describe_arg(env, value)
            ));
            return Err(convert::throw_conversion(env, &what, e));
        }
    }
    let mut len = 0u32;
    napi::check_status!(sys::napi_get_array_length(env, value, &mut len))?;
    if len > MAX_ITEMS {
        let e = convert::value_error(format!(
            "an array of {len} items is too long (at most {MAX_ITEMS})"
        ));
        return Err(convert::throw_conversion(env, &what, e));
    }
    let mut array = ptr::null_mut();
    napi::check_status!(sys::napi_create_reference(env, value, 1, &mut array))?;
    Ok(Some(Source {
        array,
        len,
        next: 0,
    }))
}

#[napi]
impl PendingUpdate {
    /// Takes `changes` apart: `add` and `remove` are read once, here.
    #[napi(constructor, ts_args_type = "changes?: UpdateOptions | null")]
    pub fn new(env: Env, changes: Option<Unknown>) -> napi::Result<Self> {
        let raw = env.raw();
        let changes = changes.map_or(ptr::null_mut(), |c| c.raw());
        let mut me = PendingUpdate {
            env: raw,
            add: None,
            remove: None,
            adds: Vec::new(),
            removes: Vec::new(),
        };
        let given = !changes.is_null()
            && !matches!(
                unsafe { crate::js::type_of(raw, changes) },
                sys::ValueType::napi_undefined | sys::ValueType::napi_null
            );
        if given {
            // Checks that it is an options object (not an array, a string, ...).
            unsafe { convert::options::<OptionsShape>(raw, changes, WHAT)? };
            me.add = unsafe { source(raw, changes, c"add")? };
            me.remove = unsafe { source(raw, changes, c"remove")? };
        }
        Ok(me)
    }

    /// Reads up to `count` more items; true while some are left.
    #[napi]
    pub fn read(&mut self, env: Env, count: u32) -> napi::Result<bool> {
        let raw = env.raw();
        let mut budget = count.max(1);
        for is_add in [true, false] {
            let source = if is_add {
                &mut self.add
            } else {
                &mut self.remove
            };
            let Some(s) = source else { continue };
            let mut array = ptr::null_mut();
            napi::check_status!(unsafe {
                sys::napi_get_reference_value(raw, s.array, &mut array)
            })?;
            let what = format!("{WHAT}: {}", if is_add { "add" } else { "remove" });
            while s.next < s.len && budget > 0 {
                let i = s.next;
                let mut item = ptr::null_mut();
                let status = unsafe { sys::napi_get_element(raw, array, i, &mut item) };
                let converted = if status != sys::Status::napi_ok {
                    Err(napi::Error::new(
                        napi::Status::PendingException,
                        "reading an item failed",
                    ))
                } else if is_add {
                    unsafe { convert::peer_item(raw, item, i) }.map(|p| self.adds.push(p))
                } else {
                    unsafe { convert::string_item(raw, item, i) }.map(|r| self.removes.push(r))
                };
                converted.map_err(|e| unsafe { convert::throw_conversion(raw, &what, e) })?;
                s.next += 1;
                budget -= 1;
            }
        }
        let left = |s: &Option<Source>| s.as_ref().is_some_and(|s| s.next < s.len);
        Ok(left(&self.add) || left(&self.remove))
    }

    /// Applies the change to `list` on a library thread (all items must have been read).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn apply(&mut self, list: ClassInstance<NativeList>) -> AsyncTask<Offload> {
        let adds = std::mem::take(&mut self.adds);
        let removes = std::mem::take(&mut self.removes);
        list.offload(Work::Update(adds, removes))
    }
}

/// Any plain object: the shape check of `updateAsync`'s argument (its fields are read
/// separately, a slice at a time).
#[derive(Default)]
struct OptionsShape;

impl FromNapiValue for OptionsShape {
    unsafe fn from_napi_value(_env: sys::napi_env, _value: sys::napi_value) -> napi::Result<Self> {
        Ok(OptionsShape)
    }
}
