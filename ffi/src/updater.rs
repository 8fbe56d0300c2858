//! Updaters (`peerlb_updater_*`): feed a list from a static set, a file, DNS, etcd or xDS.
//!
//! `peerlb_updater_bind_static/file/dns(list, ...)` ties a source to a list and returns a
//! `peerlb_updater` (not started); `peerlb_updater_start` follows the source on a library
//! thread, `peerlb_updater_stop` stops (the peers stay), `peerlb_updater_free` stops and
//! frees. A failing source keeps the last good set; `peerlb_updater_last_error` tells why.

use std::ffi::c_char;
use std::net::SocketAddr;
use std::time::Duration;

use peerlb::updater::{Binding, DnsRecord, DnsUpdater, FileUpdater, StaticUpdater};

use crate::boundary::guard;
use crate::error::{invalid, peerlb_status};
use crate::handle::{self, CallerOwned, Handle, Owned};
use crate::list::{peer_specs, peerlb_list, peerlb_peer_spec};

/// An updater bound to a list. Opaque.
///
/// Ownership: made by `peerlb_updater_bind_*`, freed with `peerlb_updater_free`.
/// Thread safety: any number of threads may use one at once, except
/// `peerlb_updater_free` (the last use).
pub struct peerlb_updater {
    _private: [u8; 0],
}

impl Handle for peerlb_updater {
    type Target = Binding;
    type Ownership = Owned;
    const NAME: &'static str = "updater";
}

/// Which DNS records `peerlb_updater_bind_dns` follows (one of `PEERLB_DNS_*`).
pub type peerlb_dns_record = u32;
/// SRV records: port and weight (→ peer weight) from the records, lowest priority only.
pub const PEERLB_DNS_SRV: peerlb_dns_record = 0;
/// A records + `port`.
pub const PEERLB_DNS_A: peerlb_dns_record = 1;
/// AAAA records + `port`.
pub const PEERLB_DNS_AAAA: peerlb_dns_record = 2;
/// A and AAAA records + `port`.
pub const PEERLB_DNS_IP: peerlb_dns_record = 3;

/// Options of `peerlb_updater_bind_dns`. Zero-initialize, then set `name` (and `port` for
/// A/AAAA); zero or negative durations and a zero threshold mean the core's defaults.
///
/// Ownership: the caller's; read during `peerlb_updater_bind_dns` only.
#[repr(C)]
pub struct peerlb_dns_options {
    /// The DNS name (NUL-terminated), e.g. `"_http._tcp.backends.example."`.
    pub name: *const c_char,
    /// `PEERLB_DNS_SRV` (0), `PEERLB_DNS_A`, `PEERLB_DNS_AAAA` or `PEERLB_DNS_IP`.
    pub record: peerlb_dns_record,
    /// The port of A/AAAA peers (1..=65535); unused for SRV.
    pub port: u16,
    /// `"ip:port"` of the nameserver (NUL-terminated), or NULL for the system's.
    pub nameserver: *const c_char,
    /// Shortest wait between polls in ms (default 1000); a longer TTL is respected.
    pub min_interval_ms: i64,
    /// Longest wait between polls in ms (default 60000).
    pub max_interval_ms: i64,
    /// Per-query timeout in ms (default 2000).
    pub timeout_ms: i64,
    /// Consecutive empty answers (NXDOMAIN / no records) before the list is emptied
    /// (default 3).
    pub empty_threshold: u32,
}

impl Handle for peerlb_dns_options {
    type Target = peerlb_dns_options;
    type Ownership = CallerOwned;
    const NAME: &'static str = "options";
}

/// A duration in milliseconds where zero or negative means "not given".
fn ms(v: i64) -> Option<Duration> {
    u64::try_from(v)
        .ok()
        .filter(|v| *v > 0)
        .map(Duration::from_millis)
}

/// The core's name of a C record kind; an unknown value is `invalid-argument`.
fn record_name(record: peerlb_dns_record) -> Result<&'static str, peerlb::Error> {
    match record {
        PEERLB_DNS_SRV => Ok("srv"),
        PEERLB_DNS_A => Ok("a"),
        PEERLB_DNS_AAAA => Ok("aaaa"),
        PEERLB_DNS_IP => Ok("ip"),
        other => Err(invalid(format!(
            "unknown record {other}; expected PEERLB_DNS_SRV (0), _A (1), _AAAA (2) or _IP (3)"
        ))),
    }
}

/// Binds a fixed set of peers to `list` (applied by `peerlb_updater_start`, which fails
/// with `PEERLB_INVALID_ARGUMENT` on an empty/over-long id or weight 0).
///
/// Ownership: the peers are copied; the caller frees `*out` with `peerlb_updater_free`
/// (before or after the list: the updater keeps what it needs alive).
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, an impossible count and non-UTF-8
/// ids.
///
/// # Safety
/// `list` NULL or live; `peers` readable for `n_peers` specs; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_bind_static(
    list: *const peerlb_list,
    peers: *const peerlb_peer_spec,
    n_peers: usize,
    out: *mut *mut peerlb_updater,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, out, set) = unsafe {
            (
                handle::borrow(list)?,
                handle::out(out, "out")?,
                peer_specs(peers, n_peers, "peers")?,
            )
        };
        out.write(handle::into_raw(StaticUpdater::new(set).bind(list)));
        Ok(())
    })
}

/// Binds a file of peers (`host:port [weight] [zone=Z] [priority=P]` per line, `#` comments) to `list`, polled
/// every `poll_interval_ms` (<= 0: the core's default, 250 ms). `peerlb_updater_start` reads it once before
/// returning. A missing file or a bad line keeps the last good set (see
/// `peerlb_updater_last_error`).
///
/// Ownership: `path` is copied; the caller frees `*out` with `peerlb_updater_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments and a non-UTF-8 path.
///
/// # Safety
/// `list` NULL or live; `path` NULL or NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_bind_file(
    list: *const peerlb_list,
    path: *const c_char,
    poll_interval_ms: i64,
    out: *mut *mut peerlb_updater,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, path, out) = unsafe {
            (
                handle::borrow(list)?,
                handle::c_str(path, "path")?,
                handle::out(out, "out")?,
            )
        };
        let mut u = FileUpdater::new(path);
        if let Some(d) = ms(poll_interval_ms) {
            u = u.poll_interval(d);
        }
        out.write(handle::into_raw(u.bind(list)));
        Ok(())
    })
}

/// Binds a DNS name to `list` (see `peerlb_dns_options`), polled on a library thread once
/// started. SERVFAIL, timeouts and refusals keep the last good set; an empty answer
/// empties the list only after `empty_threshold` consecutive polls.
///
/// Ownership: the options are copied; the caller frees `*out` with `peerlb_updater_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, a bad name, an unknown record
/// type, no port with A/AAAA, or a nameserver that is not `ip:port`.
///
/// # Safety
/// `list` NULL or live; `options` NULL or readable (its strings NULL or NUL-terminated);
/// `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_bind_dns(
    list: *const peerlb_list,
    options: *const peerlb_dns_options,
    out: *mut *mut peerlb_updater,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, o, out) = unsafe {
            (
                handle::borrow(list)?,
                handle::borrow(options)?,
                handle::out(out, "out")?,
            )
        };
        // SAFETY: as above.
        let name = unsafe { handle::c_str(o.name, "options.name") }?;
        let port = (o.port != 0).then_some(o.port);
        let record = DnsRecord::from_name(Some(record_name(o.record)?), port)?;
        let mut u = DnsUpdater::new(name, record)?;
        if !o.nameserver.is_null() {
            // SAFETY: forwarded contract.
            let ns = unsafe { handle::c_str(o.nameserver, "options.nameserver") }?;
            let addr: SocketAddr = ns
                .parse()
                .map_err(|_| invalid(format!("nameserver must be ip:port, not {ns:?}")))?;
            u = u.nameserver(addr);
        }
        if let Some(d) = ms(o.min_interval_ms) {
            u = u.min_interval(d);
        }
        if let Some(d) = ms(o.max_interval_ms) {
            u = u.max_interval(d);
        }
        if let Some(d) = ms(o.timeout_ms) {
            u = u.timeout(d);
        }
        if o.empty_threshold > 0 {
            u = u.empty_threshold(o.empty_threshold);
        }
        out.write(handle::into_raw(u.bind(list)));
        Ok(())
    })
}

/// Binds an etcd key prefix to `list`: `endpoints` is a comma-separated list of
/// `http://host:port`, `prefix` the key prefix (both NUL-terminated). Every key under the
/// prefix is a peer (value `{"addr":"host:port","weight":n,"zone":"z","priority":p}`, `host:port`, or empty = the key
/// suffix); initial get, then a watch; reconnects and resyncs after etcd restarts, keeping
/// the last good set meanwhile. `timeout_ms`/`retry_interval_ms` <= 0 mean the core's
/// defaults (2000/500).
///
/// Ownership: the strings are copied; the caller frees `*out` with `peerlb_updater_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, no endpoint, an empty prefix, or a
/// libpeerlb built without the `etcd` feature.
///
/// # Safety
/// `list` NULL or live; `endpoints`, `prefix` NULL or NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_bind_etcd(
    list: *const peerlb_list,
    endpoints: *const c_char,
    prefix: *const c_char,
    timeout_ms: i64,
    retry_interval_ms: i64,
    out: *mut *mut peerlb_updater,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, endpoints, prefix, out) = unsafe {
            (
                handle::borrow(list)?,
                handle::c_str(endpoints, "endpoints")?,
                handle::c_str(prefix, "prefix")?,
                handle::out(out, "out")?,
            )
        };
        #[cfg(feature = "etcd")]
        {
            let endpoints: Vec<String> = endpoints
                .split(',')
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect();
            let mut u = peerlb::updater::EtcdUpdater::new(endpoints, prefix)?;
            if let Some(d) = ms(timeout_ms) {
                u = u.timeout(d);
            }
            if let Some(d) = ms(retry_interval_ms) {
                u = u.retry_interval(d);
            }
            out.write(handle::into_raw(u.bind(list)));
            Ok(())
        }
        #[cfg(not(feature = "etcd"))]
        {
            let _ = (list, endpoints, prefix, timeout_ms, retry_interval_ms, out);
            Err(invalid(
                "this libpeerlb was built without etcd support (cargo feature `etcd` of peerlb-ffi)",
            ))
        }
    })
}

/// Options of `peerlb_updater_bind_xds`. Zero-initialize, then set `server` and the
/// clusters; NULL strings and zero or negative durations mean the core's defaults.
///
/// Ownership: the caller's; read during `peerlb_updater_bind_xds` only.
#[repr(C)]
pub struct peerlb_xds_options {
    /// The ADS server, `"http://host:port"` or `"host:port"` (NUL-terminated; no TLS).
    pub server: *const c_char,
    /// The names of the clusters whose endpoints feed the list (NUL-terminated each).
    pub clusters: *const *const c_char,
    /// How many names `clusters` holds (at least 1).
    pub n_clusters: usize,
    /// The node id sent to the control plane, or NULL for the default (`"peerlb"`).
    pub node_id: *const c_char,
    /// The node's cluster sent to the control plane, or NULL for the default (`"peerlb"`).
    pub node_cluster: *const c_char,
    /// How long connecting may take, in ms (default 2000).
    pub timeout_ms: i64,
    /// The first wait before reconnecting, in ms (default 500); it doubles up to
    /// `backoff_max_ms`, each wait jittered by ±20 %.
    pub backoff_initial_ms: i64,
    /// The longest wait before reconnecting, in ms (default 30000).
    pub backoff_max_ms: i64,
}

impl Handle for peerlb_xds_options {
    type Target = peerlb_xds_options;
    type Ownership = CallerOwned;
    const NAME: &'static str = "options";
}

/// Binds the endpoints of xDS clusters to `list` (see `peerlb_xds_options`): an ADS stream
/// (state of the world) subscribing to the clusters' `ClusterLoadAssignment`s. Locality
/// `region/zone/sub_zone` becomes the zone, the locality's priority the priority, the
/// endpoint's (else the locality's, else 1) weight the weight; HEALTHY and UNKNOWN
/// endpoints are offered, DEGRADED ones only when none is healthy, the others are left
/// out. Each response is ACKed; an invalid one is NACKed and the last good set stays
/// (`peerlb_updater_last_error` says why), as while the control plane is away; it
/// reconnects with backoff and the server's state then replaces the set.
///
/// Ownership: the options are copied; the caller frees `*out` with `peerlb_updater_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, a bad or `https` server, no
/// clusters, an empty cluster name or node field, or a libpeerlb built without the `xds`
/// feature.
///
/// # Safety
/// `list` NULL or live; `options` NULL or readable (its strings NULL or NUL-terminated,
/// `clusters` readable for `n_clusters` pointers); `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_bind_xds(
    list: *const peerlb_list,
    options: *const peerlb_xds_options,
    out: *mut *mut peerlb_updater,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, o, out) = unsafe {
            (
                handle::borrow(list)?,
                handle::borrow(options)?,
                handle::out(out, "out")?,
            )
        };
        // SAFETY: forwarded contract.
        let server = unsafe { handle::c_str(o.server, "options.server") }?;
        // SAFETY: forwarded contract.
        let names = unsafe { handle::slice(o.clusters, o.n_clusters, "options.clusters") }?;
        let clusters = handle::convert_each(names, |i, p| {
            // SAFETY: forwarded contract: each pointer NULL or NUL-terminated.
            unsafe { handle::c_str(*p, &format!("options.clusters[{i}]")) }.map(str::to_owned)
        })?;
        let optional = |p: *const c_char, name: &str| {
            // SAFETY: forwarded contract.
            (!p.is_null())
                .then(|| unsafe { handle::c_str(p, name) })
                .transpose()
        };
        let node_id = optional(o.node_id, "options.node_id")?;
        let node_cluster = optional(o.node_cluster, "options.node_cluster")?;
        #[cfg(feature = "xds")]
        {
            let mut u = peerlb::updater::XdsUpdater::new(server, clusters)?;
            if let Some(id) = node_id {
                u = u.node_id(id)?;
            }
            if let Some(c) = node_cluster {
                u = u.node_cluster(c)?;
            }
            if let Some(d) = ms(o.timeout_ms) {
                u = u.timeout(d);
            }
            if let Some(d) = ms(o.backoff_initial_ms) {
                u = u.backoff_initial(d);
            }
            if let Some(d) = ms(o.backoff_max_ms) {
                u = u.backoff_max(d);
            }
            out.write(handle::into_raw(u.bind(list)));
            Ok(())
        }
        #[cfg(not(feature = "xds"))]
        {
            let _ = (list, server, clusters, node_id, node_cluster, out);
            Err(invalid(
                "this libpeerlb was built without xDS support (cargo feature `xds` of peerlb-ffi)",
            ))
        }
    })
}

/// Starts following the source.
///
/// Ownership: borrows `updater` for the call.
/// Errors: `PEERLB_ALREADY_STARTED`; `PEERLB_INVALID_ARGUMENT` for NULL or a bad static set.
///
/// # Safety
/// `updater` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_start(updater: *const peerlb_updater) -> peerlb_status {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::borrow(updater) }?.start())
}

/// Stops following the source; the peers stay in the list.
///
/// Ownership: borrows `updater` for the call.
/// Errors: `PEERLB_NOT_STARTED`; `PEERLB_INVALID_ARGUMENT` for NULL.
///
/// # Safety
/// `updater` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_stop(updater: *const peerlb_updater) -> peerlb_status {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::borrow(updater) }?.stop())
}

/// The source's current failure: `*code` is `PEERLB_OK` and `*message` NULL when the last
/// read was good, else `*code` is the failure (`PEERLB_SOURCE_FAILED`) and `*message` says
/// what and where (file and line, DNS name).
///
/// Ownership: the caller frees a non-NULL `*message` with `peerlb_string_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `updater` NULL or live; `code` and `message` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_last_error(
    updater: *const peerlb_updater,
    code: *mut peerlb_status,
    message: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let u = unsafe { handle::borrow(updater) }?;
        // SAFETY: forwarded contract.
        let (code, message) =
            unsafe { (handle::out(code, "code")?, handle::out(message, "message")?) };
        match u.last_error() {
            None => {
                code.write(peerlb_status::PEERLB_OK);
                message.write(std::ptr::null_mut());
            }
            Some(e) => {
                code.write(peerlb_status::from_code(e.code()));
                message.write(handle::string_out(e.to_string()));
            }
        }
        Ok(())
    })
}

/// How many peers the updater last applied, in `*len`.
///
/// Ownership: borrows `updater` for the call; `*len` is the caller's.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `updater` NULL or live; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_len(
    updater: *const peerlb_updater,
    len: *mut usize,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let u = unsafe { handle::borrow(updater) }?;
        // SAFETY: forwarded contract.
        unsafe { handle::out(len, "len") }?.write(u.peers().len());
        Ok(())
    })
}

/// Stops (if started) and frees an updater; the peers stay in the list. NULL is ignored.
///
/// Ownership: takes `updater` back.
///
/// # Safety
/// `updater` NULL or from `peerlb_updater_bind_*`, not yet freed; no other call may use it
/// during or after this one.
#[no_mangle]
pub unsafe extern "C" fn peerlb_updater_free(updater: *mut peerlb_updater) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(updater) }
}
