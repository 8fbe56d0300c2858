//! `deterministicSubset`: the core's deterministic subsetting.

use napi::bindgen_prelude::Unknown;
use napi::{Env, JsValue};
use napi_derive::napi;

use crate::convert::{self, Strings};

/// Which `size` of `backends` client `client` connects to (Google SRE's deterministic
/// subsetting; one backend more or less moves at most one in and one out per client).
/// Every backend when `size` is 0 or at least their number. `client` and `size` are whole
/// numbers (`client` below 2^53).
#[napi(ts_args_type = "backends: ReadonlyArray<string>, client: number, size: number")]
pub fn deterministic_subset(
    env: Env,
    backends: Unknown,
    client: Unknown,
    size: Unknown,
) -> napi::Result<Vec<String>> {
    let raw = env.raw();
    let what = "deterministicSubset";
    let backends: Strings =
        unsafe { convert::arg(raw, backends.raw(), &format!("{what}: backends"))? };
    let client: f64 = unsafe { convert::arg(raw, client.raw(), &format!("{what}: client"))? };
    let size: f64 = unsafe { convert::arg(raw, size.raw(), &format!("{what}: size"))? };
    let client = convert::whole(client, (1u64 << 53) - 1)
        .map_err(|m| convert::invalid(&env, &format!("{what}: client"), m))?;
    let size = convert::whole(size, (1u64 << 53) - 1)
        .map_err(|m| convert::invalid(&env, &format!("{what}: size"), m))?;
    Ok(peerlb::subset::deterministic_subset(
        &backends.0,
        client,
        usize::try_from(size).unwrap_or(usize::MAX),
    ))
}
