//! The options of `new PeerList(options)`, as napi-rs objects (their TypeScript types are
//! generated into `native.d.ts`), and their translation into the core's `ListOptions`.
//! Anything not given stays unset, so the core's defaults apply.

use std::sync::Arc;

use napi::bindgen_prelude::{BigInt, ClassInstance, Either3, FromNapiValue, Null, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use peerlb::{EjectionPolicy, ListOptions};

use crate::clock::ManualClock;
use crate::convert::{self, Given};
use crate::js;
use crate::transport::JsTransport;

/// Outlier ejection options (whole numbers, checked by the core). Not given: the core's
/// defaults (5 failures in a row eject a peer for 30 s × the number of times it was
/// ejected, at most 300 s; at most 10 % of the peers at once, at least one; below 50 %
/// healthy peers ejections are ignored: panic mode).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct EjectionOptions {
    /// `failure` outcomes in a row that eject a peer (>= 1).
    pub failures: Option<f64>,
    /// The first ejection's length; the n-th lasts n times as long.
    pub base_ms: Option<f64>,
    /// The longest an ejection lasts (>= baseMs).
    pub max_ms: Option<f64>,
    /// At most this percentage of the peers is ejected at once (at least one).
    pub max_percent: Option<f64>,
    /// Below this percentage of healthy peers ejections are ignored (0 = never).
    pub panic_percent: Option<f64>,
}

/// JS names of [`EjectionOptions`] and the core's `EjectionPolicy::set` keys.
const EJECTION_KEYS: [(&str, &str); 5] = [
    ("failures", "failures"),
    ("baseMs", "base_ms"),
    ("maxMs", "max_ms"),
    ("maxPercent", "max_percent"),
    ("panicPercent", "panic_percent"),
];

/// Options of `new PeerList(options)`; anything not given takes the core's default.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct PeerListOptions<'a> {
    /// The strategy, optionally with a mode and options: `'round-robin'` (default),
    /// `'random'`, `'fewest-pending'`, `'two-random-choices'`, `'hash-ring'` (e.g.
    /// `'hash-ring:fast?bounded=1.25'`), `'maglev'` (`'maglev?table=251'`),
    /// `'weighted-round-robin'` (`'weighted-round-robin?slow_start_ms=30000'`,
    /// `'weighted-round-robin:orca'`), `'peak-ewma'` (`'peak-ewma?choices=all'`),
    /// `'prequal'`. Anything else is PEERLB_INVALID_ARGUMENT.
    #[napi(ts_type = "StrategyName | (string & {})")]
    pub strategy: Option<String>,
    /// Shuffle peers as they are retained (default true).
    pub shuffle: Option<bool>,
    /// Seed for shuffling and random strategies (a non-negative integer or bigint).
    pub seed: Option<Either3<f64, BigInt, Null>>,
    /// `choose` fails at once with PEERLB_NO_PEER_AVAILABLE instead of waiting (default false).
    pub fail_fast: Option<bool>,
    /// A built-in transport spec — `'always-available'` (default), `'tcp-probe'`,
    /// `'tcp-probe?interval_ms=200&timeout_ms=100&healthy_threshold=1&unhealthy_threshold=1'`,
    /// `'http-probe?path=/healthz&expect=200-299'`, `'grpc-health?service=name'`
    /// (a bad spec is PEERLB_INVALID_ARGUMENT) — or a transport object: the list calls
    /// `retain` when it starts using a peer and `release` when it stops; report the peer's
    /// status through the subscriber (until then it is 'unavailable'). Throwing makes the
    /// list operation fail with PEERLB_TRANSPORT_FAILED. Callbacks may call back into the list.
    #[napi(
        ts_type = "'always-available' | 'tcp-probe' | 'http-probe' | 'grpc-health' | (string & {}) | { retain(peerId: string, subscriber: Subscriber): unknown; release(peerId: string, subscriber: Subscriber): unknown; readonly name?: string } | null"
    )]
    pub transport: Option<Unknown<'a>>,
    /// Outlier ejection: on by default (`true`/absent = the defaults), `false` = off.
    #[napi(ts_type = "boolean | EjectionOptions | null")]
    pub ejection: Option<Unknown<'a>>,
    /// The clock for ejection times and time-based strategies (default the real clock).
    #[napi(ts_type = "ManualClock | 'real' | null")]
    pub clock: Option<Unknown<'a>>,
    /// The list's name: its `list` label in metrics and its path on the admin endpoint
    /// (1..=128 of `A-Z a-z 0-9 _ - . :`; default `list-N`).
    pub name: Option<String>,
    /// Circuit breaker: with this many of the list's requests in flight, `choose` fails at
    /// once with PEERLB_OVERLOADED (an integer >= 1; no limit when not given).
    pub max_pending: Option<f64>,
    /// Circuit breaker per peer: a peer with this many requests in flight is not chosen;
    /// when every peer tried is at it, PEERLB_OVERLOADED (an integer >= 1).
    pub max_pending_per_peer: Option<f64>,
    /// Whether the list keeps metrics (default true).
    pub metrics: Option<bool>,
    /// Whether metrics carry a `peer` label (default true; false collapses the peers).
    pub peer_labels: Option<bool>,
    /// Expected number of peers, a whole number (a pre-sizing hint; default 10, yarpc's).
    pub capacity: Option<f64>,
    /// The zone this client runs in: turns on Envoy's zone-aware routing inside each
    /// priority level (peers carry `zone`); empty or absent means none.
    pub local_zone: Option<String>,
    /// Below this many healthy peers in a priority level zone-aware routing is off for
    /// that level (a whole number; default 6, Envoy's).
    pub min_cluster_size: Option<f64>,
    /// Envoy's overprovisioning factor for priority load (default 1.4; a number in 1..=100).
    pub overprovisioning_factor: Option<f64>,
    /// Deterministic subsetting: the list retains only this many of the peers `update`
    /// offers it, `deterministicSubset(offered, subsetClient, subset)`; updates still name
    /// the whole offered set (their errors are about it), and `introspect().subset` shows
    /// it. A whole number; 0 (or absent) is off. Needs `subsetClient`.
    pub subset: Option<f64>,
    /// This client's id for `subset` (a non-negative integer below 2^53, or a bigint below
    /// 2^64); needs `subset`.
    pub subset_client: Option<Either3<f64, BigInt, Null>>,
}

impl PeerListOptions<'_> {
    /// The core's options, and the JS transport (if any), which refers to its object weakly
    /// (the wrapper `PeerList` holds the object).
    pub fn into_core(self, env: &Env) -> napi::Result<(ListOptions, Option<JsTransport>)> {
        let raw = env.raw();
        let mut opts = ListOptions::default();
        if let Some(s) = self.strategy {
            opts = opts.strategy_name(&s).map_err(|e| js::throw(env, &e))?;
        }
        if let Some(s) = self.shuffle {
            opts = opts.shuffle(s);
        }
        if let Some(f) = self.fail_fast {
            opts = opts.fail_fast(f);
        }
        if let Some(seed) = self.seed.given() {
            opts = opts.seed(whole_u64(env, seed, "new PeerList: seed")?);
        }
        if let Some(name) = self.name {
            opts = opts.name(name);
        }
        // Limits go to the core as given (0 included: the core refuses it).
        let max = (1u64 << 53) - 1;
        if let Some(n) = self.max_pending {
            let limit = convert::whole(n, max)
                .map_err(|m| convert::invalid(env, "new PeerList: maxPending", m))?;
            opts = opts.max_pending(limit as usize);
        }
        if let Some(n) = self.max_pending_per_peer {
            let limit = convert::whole(n, max)
                .map_err(|m| convert::invalid(env, "new PeerList: maxPendingPerPeer", m))?;
            opts = opts.max_pending_per_peer(limit as usize);
        }
        if let Some(on) = self.metrics {
            opts = opts.metrics(on);
        }
        if let Some(on) = self.peer_labels {
            opts = opts.peer_labels(on);
        }
        if let Some(e) = self.ejection {
            opts = opts.ejection(unsafe { ejection(raw, e.raw())? });
        }
        if let Some(c) = self.capacity {
            let capacity = convert::whole(c, (1u64 << 53) - 1)
                .map_err(|m| convert::invalid(env, "new PeerList: capacity", m))?;
            opts = opts.capacity(usize::try_from(capacity).unwrap_or(usize::MAX));
        }
        if let Some(z) = self.local_zone {
            opts = opts.local_zone(z);
        }
        if let Some(n) = self.min_cluster_size {
            let n = convert::whole(n, (1u64 << 53) - 1)
                .map_err(|m| convert::invalid(env, "new PeerList: minClusterSize", m))?;
            opts = opts.min_cluster_size(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(f) = self.overprovisioning_factor {
            opts = opts.overprovisioning_factor(f);
        }
        // Each as given: the core decides whether the pair makes sense.
        if let Some(n) = self.subset {
            let size = convert::whole(n, (1u64 << 53) - 1)
                .map_err(|m| convert::invalid(env, "new PeerList: subset", m))?;
            opts = opts.subset(usize::try_from(size).unwrap_or(usize::MAX));
        }
        if let Some(client) = self.subset_client.given() {
            opts = opts.subset_client(whole_u64(env, client, "new PeerList: subsetClient")?);
        }
        if let Some(c) = self.clock {
            if let Some(clock) = unsafe { clock_arg(raw, c.raw(), "new PeerList: clock")? } {
                opts = opts.clock(clock);
            }
        }
        let mut transport = None;
        if let Some(t) = self.transport {
            match unsafe { js::type_of(raw, t.raw()) } {
                sys::ValueType::napi_undefined | sys::ValueType::napi_null => {}
                sys::ValueType::napi_string => {
                    let spec = unsafe { js::string_value(raw, t.raw()) }.unwrap_or_default();
                    let t = peerlb::transport_from_spec(&spec).map_err(|e| js::throw(env, &e))?;
                    opts = opts.transport(t);
                }
                sys::ValueType::napi_object => {
                    let t = unsafe { JsTransport::new(env, t.raw())? };
                    opts = opts.transport(Arc::new(t.clone()));
                    transport = Some(t);
                }
                _ => {
                    return Err(js::type_error(
                        env,
                        &format!(
                            "new PeerList: transport must be a transport spec string (e.g. \"tcp-probe\") or an object with retain(peerId, subscriber) and release(peerId, subscriber) methods, got {}",
                            unsafe { js::describe_arg(raw, t.raw()) }
                        ),
                    ))
                }
            }
        }
        Ok((opts, transport))
    }
}

/// The `ejection` option: a boolean or an [`EjectionOptions`] object (unknown keys are
/// refused, so that a misspelt option is not silently ignored).
unsafe fn ejection(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Option<EjectionPolicy>> {
    let what = "new PeerList: ejection";
    match js::type_of(env, v) {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => {
            return Ok(Some(EjectionPolicy::default()))
        }
        sys::ValueType::napi_boolean => {
            let on: bool = convert::arg(env, v, what)?;
            return Ok(on.then(EjectionPolicy::default));
        }
        sys::ValueType::napi_object if !convert::is_array(env, v) => {}
        _ => {
            let m = format!(
                "{what} must be false or an object, got {}",
                js::describe_arg(env, v)
            );
            return Err(js::throw_value(env, js::type_error_value(env, &m), &m));
        }
    }
    let known: Vec<&str> = EJECTION_KEYS.iter().map(|(k, _)| *k).collect();
    let unknown = convert::unknown_keys(env, v, &known)
        .map_err(|e| convert::throw_conversion(env, what, e))?;
    if let Some(k) = unknown.first() {
        let e = peerlb::Error::InvalidArgument(format!(
            "unknown ejection option {k:?} (known: {})",
            known.join(", ")
        ));
        return Err(js::throw_value(
            env,
            js::error_value(env, &e),
            &e.to_string(),
        ));
    }
    let o: EjectionOptions = convert::arg(env, v, what)?;
    let mut policy = EjectionPolicy::default();
    let values = [
        o.failures,
        o.base_ms,
        o.max_ms,
        o.max_percent,
        o.panic_percent,
    ];
    for ((_, key), value) in EJECTION_KEYS.iter().zip(values) {
        if let Some(v) = value {
            // The core parses and checks each value (whole, in range).
            let text = if v == 0.0 {
                "0".to_owned()
            } else {
                v.to_string()
            };
            policy
                .set(key, &text)
                .map_err(|e| js::throw_value(env, js::error_value(env, &e), &e.to_string()))?;
        }
    }
    policy
        .validate()
        .map_err(|e| js::throw_value(env, js::error_value(env, &e), &e.to_string()))?;
    Ok(Some(policy))
}

/// A `clock` option: a `ManualClock`, `'real'`, or nothing; `None` is the real clock.
///
/// # Safety
/// `env` must be the env of the current call, on its JS thread.
pub unsafe fn clock_arg(
    env: sys::napi_env,
    v: sys::napi_value,
    what: &str,
) -> napi::Result<Option<peerlb::Clock>> {
    match js::type_of(env, v) {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => return Ok(None),
        sys::ValueType::napi_string if js::string_value(env, v).as_deref() == Some("real") => {
            return Ok(None)
        }
        sys::ValueType::napi_object => {
            if let Ok(c) = ClassInstance::<ManualClock>::from_napi_value(env, v) {
                return Ok(Some(peerlb::Clock::from(c.inner.clone())));
            }
        }
        _ => {}
    }
    let m = format!(
        "{what} must be a ManualClock or 'real', got {}",
        js::describe_arg(env, v)
    );
    Err(js::throw_value(env, js::type_error_value(env, &m), &m))
}

/// A whole number from JS, a number below 2^53 or a bigint below 2^64 (seeds, client ids).
fn whole_u64(env: &Env, value: napi::Either<f64, BigInt>, what: &str) -> napi::Result<u64> {
    match value {
        napi::Either::A(n) => {
            convert::whole(n, (1u64 << 53) - 1).map_err(|m| convert::invalid(env, what, m))
        }
        napi::Either::B(b) => {
            let (negative, value, lossless) = b.get_u64();
            if negative || !lossless {
                return Err(convert::invalid(env, what, "must be a bigint in 0..2^64"));
            }
            Ok(value)
        }
    }
}
