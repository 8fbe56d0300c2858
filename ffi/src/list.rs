//! Peer lists, their options, requests and choices.

use std::ffi::{c_char, c_void, CStr, CString};
use std::time::Duration;

use peerlb::{Choice, ConnectionStatus, ListOptions, Outcome, PeerList, PeerSpec, Request};

use crate::error::{guard, guard_value, invalid, peerlb_status};
use crate::transport::{
    peerlb_connection_status, peerlb_transport_vtable, CTransport, PEERLB_CONNECTION_AVAILABLE,
    PEERLB_CONNECTION_CONNECTING, PEERLB_CONNECTION_UNAVAILABLE,
};

/// How a request to a chosen peer ended (one of the `PEERLB_OUTCOME_*` values; any other
/// value is `PEERLB_INVALID_ARGUMENT`).
#[allow(non_camel_case_types)]
pub type peerlb_outcome = u32;
/// The request succeeded.
pub const PEERLB_OUTCOME_OK: peerlb_outcome = 0;
/// The request failed in a way that counts against the peer.
pub const PEERLB_OUTCOME_FAILURE: peerlb_outcome = 1;
/// The peer refused on purpose (overload, shedding): no retry, no ejection.
pub const PEERLB_OUTCOME_DECLINED: peerlb_outcome = 2;
/// The caller gave up on the request.
pub const PEERLB_OUTCOME_CANCELLED: peerlb_outcome = 3;

/// `peerlb_request.timeout_ms` value meaning "no deadline" (any negative value does).
pub const PEERLB_NO_TIMEOUT: i64 = -1;

/// Options for `peerlb_list_new`, built with `peerlb_list_options_new` and the
/// `peerlb_list_options_set_*` setters.
///
/// Ownership: the caller frees it with `peerlb_list_options_free`; `peerlb_list_new` copies
/// what it needs, so options may be freed (or reused) right after.
/// Thread safety: not synchronized; use one from one thread at a time.
pub struct peerlb_list_options {
    pub(crate) inner: ListOptions,
    /// A built-in transport by spec (`peerlb_list_options_set_transport`), built per list.
    transport_spec: Option<String>,
}

/// A peer list: peers, their lifecycle, and a strategy to choose among the available ones.
///
/// Ownership: made by `peerlb_list_new`, freed with `peerlb_list_free`.
/// Thread safety: every function taking a `peerlb_list` may be called from any number of
/// threads at once (including from transport callbacks), except `peerlb_list_free`, which
/// must be the last use.
pub struct peerlb_list {
    pub(crate) inner: PeerList,
}

/// A peer to add: `id_len` bytes of UTF-8 at `id` (no NUL needed; 1 to 1024 bytes) and a
/// weight (at least 1; use 1 when weights do not matter).
#[repr(C)]
pub struct peerlb_peer_spec {
    /// The peer id's bytes (usually `host:port`).
    pub id: *const c_char,
    /// Its length in bytes.
    pub id_len: usize,
    /// Relative weight for weighting strategies, at least 1 (0 fails that peer with
    /// `PEERLB_INVALID_ARGUMENT`, like an empty id).
    pub weight: u32,
}

/// A peer id to remove: `len` bytes of UTF-8 at `id`.
#[repr(C)]
pub struct peerlb_peer_id {
    /// The peer id's bytes.
    pub id: *const c_char,
    /// Its length in bytes.
    pub len: usize,
}

/// The parameters of one `peerlb_list_choose`.
///
/// Ownership: the caller's; read during the call only.
#[repr(C)]
pub struct peerlb_request {
    /// How long to wait for an available peer, in milliseconds; negative (e.g.
    /// `PEERLB_NO_TIMEOUT`) means no deadline (then a list with no available peer fails at
    /// once with `PEERLB_NO_DEADLINE`). 0 means "only if one is available now".
    pub timeout_ms: i64,
    /// Key for hash-based strategies (others ignore it); may be NULL when `shard_key_len`
    /// is 0.
    pub shard_key: *const u8,
    /// Length of `shard_key` in bytes; 0 means no shard key.
    pub shard_key_len: usize,
}

/// A chosen peer: filled in by `peerlb_list_choose`, ended by `peerlb_choice_finish`.
///
/// The request counts as pending on the peer until the choice is finished. A choice is a
/// plain struct on the caller's side (choose does not allocate); do not copy it and finish
/// both copies. `peerlb_choice_finish` clears it, so finishing it a second time is
/// `PEERLB_INVALID_ARGUMENT`, not a crash. A choice stays valid (and must still be finished)
/// after its list is stopped or freed.
///
/// Thread safety: a choice may be finished on any thread, once.
#[repr(C)]
pub struct peerlb_choice {
    /// The chosen peer's id: `peer_len` bytes, NOT NUL-terminated (print it with
    /// `"%.*s", (int)c.peer_len, c.peer`). Valid until the choice is finished.
    pub peer: *const c_char,
    /// Length of `peer` in bytes.
    pub peer_len: usize,
    /// Opaque; NULL once finished. Do not touch.
    pub token: *const c_void,
}

impl peerlb_choice {
    /// The C form of a choice; the id lives in the peer, which the token keeps alive until
    /// the choice is finished.
    pub(crate) fn from_choice(choice: Choice) -> peerlb_choice {
        let id = choice.peer().as_str();
        let (peer, peer_len) = (id.as_ptr().cast::<c_char>(), id.len());
        let token = choice.into_raw().cast::<c_void>();
        peerlb_choice {
            peer,
            peer_len,
            token,
        }
    }

    /// Fails with invalid-argument when the choice is already finished (or never chosen).
    pub(crate) fn check_live(&self) -> Result<(), peerlb::Error> {
        if self.token.is_null() {
            return Err(invalid(
                "the choice is already finished (or was never chosen)",
            ));
        }
        Ok(())
    }

    /// Takes the choice back (clearing the struct, so it cannot be taken twice).
    ///
    /// # Safety
    /// The token must be non-NULL (see [`peerlb_choice::check_live`]) and come from
    /// [`peerlb_choice::from_choice`].
    pub(crate) unsafe fn take(&mut self) -> Choice {
        let token = std::mem::replace(&mut self.token, std::ptr::null());
        self.peer = std::ptr::null();
        self.peer_len = 0;
        // SAFETY: a non-NULL token came from Choice::into_raw and is cleared right above, so
        // it is rebuilt exactly once.
        unsafe { Choice::from_raw(token.cast::<()>()) }
    }
}

/// A latency in microseconds as the core takes it (negative = unknown).
pub(crate) fn latency(latency_us: i64) -> Option<Duration> {
    u64::try_from(latency_us).ok().map(Duration::from_micros)
}

pub(crate) fn outcome(value: peerlb_outcome) -> Option<Outcome> {
    match value {
        PEERLB_OUTCOME_OK => Some(Outcome::Ok),
        PEERLB_OUTCOME_FAILURE => Some(Outcome::Failure),
        PEERLB_OUTCOME_DECLINED => Some(Outcome::Declined),
        PEERLB_OUTCOME_CANCELLED => Some(Outcome::Cancelled),
        _ => None,
    }
}

/// Borrows a list or fails with invalid-argument.
///
/// # Safety
/// `list` must be NULL or a live list.
pub(crate) unsafe fn list_ref<'a>(list: *const peerlb_list) -> Result<&'a PeerList, peerlb::Error> {
    // SAFETY: the caller passes a live list or NULL.
    unsafe { list.as_ref() }
        .map(|l| &l.inner)
        .ok_or_else(|| invalid("list is NULL"))
}

/// Borrows `len` elements at `ptr` as a slice; NULL with `len > 0`, or a length no real
/// array can have, is invalid-argument.
///
/// # Safety
/// `ptr` must be NULL or readable for `len` elements.
pub(crate) unsafe fn slice_from<'a, T>(
    what: &str,
    ptr: *const T,
    len: usize,
) -> Result<&'a [T], peerlb::Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(invalid(format!("{what} is NULL but its length is {len}")));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(invalid(format!("{what} has an impossible length {len}")));
    }
    // SAFETY: non-NULL, plausible length, and the caller gives `len` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Reads `len` bytes at `ptr` as a peer id string (NULL and non-UTF-8 are errors; empty
/// and over-long ids are left to the core, which reports them per peer).
///
/// # Safety
/// `ptr` must be NULL or readable for `len` bytes.
pub(crate) unsafe fn id_str<'a>(
    what: &str,
    ptr: *const c_char,
    len: usize,
) -> Result<&'a str, peerlb::Error> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { slice_from(what, ptr.cast::<u8>(), len) }?;
    std::str::from_utf8(bytes).map_err(|e| invalid(format!("{what} is not valid UTF-8: {e}")))
}

/// Reads a C request (NULL: no timeout, no shard key); the shard key is borrowed.
///
/// # Safety
/// `request` must be NULL or valid, its shard key readable for its length.
pub(crate) unsafe fn request_from<'a>(
    request: *const peerlb_request,
) -> Result<Request<'a>, peerlb::Error> {
    let mut req = Request::new();
    // SAFETY: the caller passes a valid request or NULL.
    if let Some(r) = unsafe { request.as_ref() } {
        if r.timeout_ms >= 0 {
            req = req.with_timeout(Duration::from_millis(r.timeout_ms as u64));
        }
        if r.shard_key_len > 0 {
            // SAFETY: the caller gives shard_key_len readable bytes.
            req = req
                .with_shard_key(unsafe { slice_from("shard_key", r.shard_key, r.shard_key_len) }?);
        }
    }
    Ok(req)
}

/// Creates options with the defaults: strategy `round-robin`, shuffle on, seed from the OS,
/// fail-fast off, always-available transport, outlier ejection on with the default policy
/// (`peerlb_list_options_set_ejection`), the real clock.
///
/// Ownership: the caller frees `*out` with `peerlb_list_options_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` when `out` is NULL.
///
/// # Safety
/// `out` must be writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_new(
    out: *mut *mut peerlb_list_options,
) -> peerlb_status {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let opts = Box::new(peerlb_list_options {
            inner: ListOptions::default(),
            transport_spec: None,
        });
        // SAFETY: checked non-NULL.
        unsafe { out.write(Box::into_raw(opts)) };
        Ok(())
    })
}

/// Frees options. NULL is ignored.
///
/// # Safety
/// `opts` must be NULL or from `peerlb_list_options_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_free(opts: *mut peerlb_list_options) {
    guard_value((), || {
        if !opts.is_null() {
            // SAFETY: from Box::into_raw in peerlb_list_options_new.
            drop(unsafe { Box::from_raw(opts) });
        }
    })
}

/// Applies `f` to the options behind `opts` (left unchanged when `f` fails).
///
/// # Safety
/// `opts` must be NULL or live options.
pub(crate) unsafe fn with_options(
    opts: *mut peerlb_list_options,
    f: impl FnOnce(ListOptions) -> Result<ListOptions, peerlb::Error>,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the caller passes live options or NULL.
        let opts = unsafe { opts.as_mut() }.ok_or_else(|| invalid("options are NULL"))?;
        opts.inner = f(opts.inner.clone())?;
        Ok(())
    })
}

/// Sets the strategy by name (`"round-robin"`, `"random"`, `"fewest-pending"`,
/// `"two-random-choices"`, and those later versions add). The name is NUL-terminated and
/// copied.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, non-UTF-8 or an unknown name (the
/// options are then unchanged).
///
/// # Safety
/// `opts` live options or NULL; `name` a NUL-terminated string or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_strategy(
    opts: *mut peerlb_list_options,
    name: *const c_char,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_options(opts, |o| {
            if name.is_null() {
                return Err(invalid("strategy name is NULL"));
            }
            let name = CStr::from_ptr(name)
                .to_str()
                .map_err(|_| invalid("strategy name is not valid UTF-8"))?;
            o.strategy_name(name)
        })
    }
}

/// Selects a built-in transport by its spec string: `"always-available"` (the default) or
/// `"tcp-probe"` with options, e.g. `"tcp-probe?interval_ms=200&timeout_ms=100"` (keys
/// `interval_ms` (default 1000), `timeout_ms` (500), `healthy_threshold` (1),
/// `unhealthy_threshold` (1)). Every list made from these options gets its own transport.
/// The spec is NUL-terminated and copied. Passing a vtable to `peerlb_list_new` as well
/// is an error.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, non-UTF-8, an unknown transport or
/// a bad option (the options are then unchanged).
///
/// # Safety
/// `opts` live options or NULL; `spec` a NUL-terminated string or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_transport(
    opts: *mut peerlb_list_options,
    spec: *const c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the caller passes live options or NULL.
        let opts = unsafe { opts.as_mut() }.ok_or_else(|| invalid("options are NULL"))?;
        if spec.is_null() {
            return Err(invalid("transport spec is NULL"));
        }
        // SAFETY: the caller passes a NUL-terminated string.
        let spec = unsafe { CStr::from_ptr(spec) }
            .to_str()
            .map_err(|_| invalid("transport spec is not valid UTF-8"))?;
        peerlb::transport_from_spec(spec)?; // validate now
        opts.transport_spec = Some(spec.to_owned());
        Ok(())
    })
}

/// Whether to shuffle peers as they are retained (default true).
///
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_shuffle(
    opts: *mut peerlb_list_options,
    shuffle: bool,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.shuffle(shuffle))) }
}

/// Seeds shuffling and random strategies, for reproducible runs (default: from the OS).
///
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_seed(
    opts: *mut peerlb_list_options,
    seed: u64,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.seed(seed))) }
}

/// Makes `peerlb_list_choose` fail at once with `PEERLB_NO_PEER_AVAILABLE` instead of
/// waiting for a peer (default false).
///
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_fail_fast(
    opts: *mut peerlb_list_options,
    fail_fast: bool,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.fail_fast(fail_fast))) }
}

/// Expected number of peers (pre-sizes the list; default 0).
///
/// Errors: `PEERLB_INVALID_ARGUMENT` when `opts` is NULL.
///
/// # Safety
/// `opts` live options or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_capacity(
    opts: *mut peerlb_list_options,
    capacity: usize,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe { with_options(opts, |o| Ok(o.capacity(capacity))) }
}

/// Creates an idle list. `opts` may be NULL (defaults); `transport` may be NULL (the
/// built-in always-available transport) or a vtable of C callbacks, which is copied.
///
/// Ownership: the caller frees `*out` with `peerlb_list_free`. On success the list owns
/// `transport->userdata` (see `peerlb_transport_vtable`); on failure nothing was taken.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL `out`, or a vtable without `retain` or
/// `release` or with a non-UTF-8 name.
///
/// # Safety
/// `opts` NULL or live options; `transport` NULL or a valid vtable; `out` writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_new(
    opts: *const peerlb_list_options,
    transport: *const peerlb_transport_vtable,
    out: *mut *mut peerlb_list,
) -> peerlb_status {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: the caller passes live options or NULL.
        let (mut options, spec) = match unsafe { opts.as_ref() } {
            Some(o) => (o.inner.clone(), o.transport_spec.clone()),
            None => (ListOptions::default(), None),
        };
        if let Some(spec) = spec {
            if !transport.is_null() {
                return Err(invalid(
                    "both a transport spec (peerlb_list_options_set_transport) and a transport vtable were given",
                ));
            }
            options = options.transport(peerlb::transport_from_spec(&spec)?);
        }
        // SAFETY: the caller passes a valid vtable or NULL.
        if let Some(vtable) = unsafe { transport.as_ref() } {
            // SAFETY: the vtable's fields follow its documented contract.
            let transport = unsafe { CTransport::from_vtable(vtable) }?;
            // From here on the list owns userdata: nothing below can fail before the list
            // exists (PeerList::new validates nothing the options setters did not).
            options = options.transport(std::sync::Arc::new(transport));
        }
        let list = PeerList::new(options)?;
        // SAFETY: checked non-NULL.
        unsafe { out.write(Box::into_raw(Box::new(peerlb_list { inner: list }))) };
        Ok(())
    })
}

/// Frees a list. A running list releases its peers first (through the transport), then the
/// transport's `free_userdata` runs. Unfinished choices stay valid and must still be
/// finished. NULL is ignored.
///
/// Thread safety: no other call may use the list during or after this one.
///
/// # Safety
/// `list` must be NULL or from `peerlb_list_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_free(list: *mut peerlb_list) {
    guard_value((), || {
        if !list.is_null() {
            // SAFETY: from Box::into_raw in peerlb_list_new.
            drop(unsafe { Box::from_raw(list) });
        }
    })
}

/// Starts the list: retains every peer through the transport.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` (NULL list), `PEERLB_ALREADY_STARTED`, and
/// `PEERLB_TRANSPORT_FAILED` when retaining some peers failed (those peers are removed;
/// the list runs).
///
/// # Safety
/// `list` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_start(list: *const peerlb_list) -> peerlb_status {
    // SAFETY: forwarded contract.
    guard(|| unsafe { list_ref(list) }?.start())
}

/// Stops the list: releases every peer (they stay in the list) and wakes every waiting
/// `peerlb_list_choose`, which fails with `PEERLB_NOT_STARTED`.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` (NULL list), `PEERLB_NOT_STARTED`,
/// `PEERLB_TRANSPORT_FAILED` (release failed; the peers are released anyway).
///
/// # Safety
/// `list` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_stop(list: *const peerlb_list) -> peerlb_status {
    // SAFETY: forwarded contract.
    guard(|| unsafe { list_ref(list) }?.stop())
}

/// Removes `n_removes` peers, then adds `n_adds`. Every addition and removal that can be
/// applied is; the failures come back together (`peerlb_last_error_codes` lists them):
/// `PEERLB_PEER_ALREADY_IN_LIST`, `PEERLB_PEER_NOT_IN_LIST`, `PEERLB_INVALID_ARGUMENT`
/// (empty or over-long id), `PEERLB_TRANSPORT_FAILED`, or `PEERLB_MULTIPLE_ERRORS` when
/// they differ.
///
/// A malformed call — NULL list, NULL array with a non-zero count, NULL id with a non-zero
/// length, an id that is not UTF-8 — is `PEERLB_INVALID_ARGUMENT` and changes nothing.
///
/// Ownership: the arrays and ids are the caller's and are copied.
///
/// # Safety
/// `list` NULL or live; `adds`/`removes` NULL or readable for their counts, with each id
/// readable for its length.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_update(
    list: *const peerlb_list,
    adds: *const peerlb_peer_spec,
    n_adds: usize,
    removes: *const peerlb_peer_id,
    n_removes: usize,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let list = unsafe { list_ref(list) }?;
        // SAFETY: the caller gives n_adds readable specs and n_removes readable ids.
        let adds = unsafe { slice_from("adds", adds, n_adds) }?;
        // SAFETY: as above.
        let removes = unsafe { slice_from("removes", removes, n_removes) }?;
        let mut additions = Vec::with_capacity(adds.len());
        for (i, spec) in adds.iter().enumerate() {
            // SAFETY: the caller gives readable ids.
            let id = unsafe { id_str(&format!("adds[{i}].id"), spec.id, spec.id_len) }?;
            additions.push(PeerSpec::weighted(id, spec.weight));
        }
        let mut removals = Vec::with_capacity(removes.len());
        for (i, r) in removes.iter().enumerate() {
            // SAFETY: the caller gives readable ids.
            removals.push(unsafe { id_str(&format!("removes[{i}].id"), r.id, r.len) }?);
        }
        list.update(additions, removals)
    })
}

/// Chooses an available peer for one request, waiting (blocking the calling thread) up to
/// `request->timeout_ms` for one if none is available. `request` may be NULL (no timeout,
/// no shard key).
///
/// On success `*out` is the choice, which the caller must end with `peerlb_choice_finish`.
/// Does not allocate. On failure `*out` is untouched.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` (NULL list or out, NULL shard key with a non-zero
/// length), `PEERLB_NOT_STARTED` (not running, or stopped while waiting), `PEERLB_TIMEOUT`,
/// `PEERLB_NO_DEADLINE`, `PEERLB_NO_PEER_AVAILABLE` (fail-fast list).
///
/// # Safety
/// `list` NULL or live; `request` NULL or valid; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_choose(
    list: *const peerlb_list,
    request: *const peerlb_request,
    out: *mut peerlb_choice,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let list = unsafe { list_ref(list) }?;
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: forwarded contract.
        let req = unsafe { request_from(request) }?;
        let choice = list.choose(&req)?;
        // SAFETY: checked non-NULL.
        unsafe { out.write(peerlb_choice::from_choice(choice)) };
        Ok(())
    })
}

/// The chosen peer's id as `*len` bytes at `*id` (not NUL-terminated; valid until the
/// choice is finished). Same as reading `choice->peer` and `choice->peer_len`.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or a finished choice.
///
/// # Safety
/// `choice` NULL or a choice from `peerlb_list_choose`; `id`, `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_choice_peer(
    choice: *const peerlb_choice,
    id: *mut *const c_char,
    len: *mut usize,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the caller passes a valid choice or NULL.
        let c = unsafe { choice.as_ref() }.ok_or_else(|| invalid("choice is NULL"))?;
        if id.is_null() || len.is_null() {
            return Err(invalid("id or len is NULL"));
        }
        if c.token.is_null() {
            return Err(invalid(
                "the choice is already finished (or was never chosen)",
            ));
        }
        // SAFETY: checked non-NULL.
        unsafe {
            id.write(c.peer);
            len.write(c.peer_len);
        }
        Ok(())
    })
}

/// Ends the request of a choice: the peer's pending count goes down and the outcome
/// (`PEERLB_OUTCOME_*`) and latency (microseconds; negative when unknown) are recorded.
/// Clears `*choice`, so finishing it again is `PEERLB_INVALID_ARGUMENT`. Safe after the
/// list was stopped or freed.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL or already finished choice, or an unknown
/// outcome (the choice is then left as it was, still to be finished).
///
/// # Safety
/// `choice` NULL, or a choice filled by `peerlb_list_choose` (or one already finished
/// through this same struct). Finishing a *copy* of a finished choice is undefined.
#[no_mangle]
pub unsafe extern "C" fn peerlb_choice_finish(
    choice: *mut peerlb_choice,
    outcome: peerlb_outcome,
    latency_us: i64,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the caller passes a valid choice or NULL.
        let c = unsafe { choice.as_mut() }.ok_or_else(|| invalid("choice is NULL"))?;
        if c.token.is_null() {
            return Err(invalid(
                "the choice is already finished (or was never chosen)",
            ));
        }
        let outcome = self::outcome(outcome).ok_or_else(|| {
            invalid(format!(
                "unknown outcome {outcome}; expected PEERLB_OUTCOME_OK (0), _FAILURE (1), _DECLINED (2) or _CANCELLED (3)"
            ))
        })?;
        // SAFETY: the caller's choice came from peerlb_list_choose (checked live above).
        let rebuilt = unsafe { c.take() };
        rebuilt.finish(outcome, latency(latency_us));
        Ok(())
    })
}

/// A JSON snapshot of the list:
/// `{"strategy":"round-robin","transport":"always-available","state":"running",
/// "summary":"Running (2/3 available)","available":2,"total":3,
/// "peers":[{"id":"a:1","status":"available","pending":0,"weight":1}, ...]}`.
///
/// Ownership: the caller frees `*json` with `peerlb_string_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `list` NULL or live; `json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_introspect(
    list: *const peerlb_list,
    json: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let list = unsafe { list_ref(list) }?;
        if json.is_null() {
            return Err(invalid("json is NULL"));
        }
        let text = list.introspect().to_json();
        let text = CString::new(text).map_err(|_| invalid("introspection contains NUL"))?;
        // SAFETY: checked non-NULL.
        unsafe { json.write(text.into_raw()) };
        Ok(())
    })
}

/// Whether the list is running (started and not stopped), in `*running`.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `list` NULL or live; `running` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_is_running(
    list: *const peerlb_list,
    running: *mut bool,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let list = unsafe { list_ref(list) }?;
        if running.is_null() {
            return Err(invalid("running is NULL"));
        }
        // SAFETY: checked non-NULL.
        unsafe { running.write(list.is_running()) };
        Ok(())
    })
}

/// A peer's status: what its transport last reported and its requests in flight.
#[repr(C)]
pub struct peerlb_peer_status {
    /// `PEERLB_CONNECTION_*` (an idle list's peers are `PEERLB_CONNECTION_UNAVAILABLE`).
    pub connection_status: peerlb_connection_status,
    /// Requests chosen for this peer and not finished yet.
    pub pending: usize,
}

/// The status of peer `id` (`len` bytes of UTF-8) in `*status`.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments or a non-UTF-8 id,
/// `PEERLB_PEER_NOT_IN_LIST` when the list has no such peer.
///
/// # Safety
/// `list` NULL or live; `id` NULL or readable for `len` bytes; `status` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_peer_status(
    list: *const peerlb_list,
    id: *const c_char,
    len: usize,
    status: *mut peerlb_peer_status,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let list = unsafe { list_ref(list) }?;
        // SAFETY: forwarded contract.
        let id = unsafe { id_str("id", id, len) }?;
        if status.is_null() {
            return Err(invalid("status is NULL"));
        }
        let got = list
            .peer_status(id)
            .ok_or_else(|| peerlb::Error::PeerNotInList(id.to_owned()))?;
        let connection_status = match got.connection_status {
            ConnectionStatus::Unavailable => PEERLB_CONNECTION_UNAVAILABLE,
            ConnectionStatus::Connecting => PEERLB_CONNECTION_CONNECTING,
            ConnectionStatus::Available => PEERLB_CONNECTION_AVAILABLE,
        };
        // SAFETY: checked non-NULL.
        unsafe {
            status.write(peerlb_peer_status {
                connection_status,
                pending: got.pending,
            })
        };
        Ok(())
    })
}

/// How many peers the list has (retained or not), in `*len`.
///
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `list` NULL or live; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_len(
    list: *const peerlb_list,
    len: *mut usize,
) -> peerlb_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let list = unsafe { list_ref(list) }?;
        if len.is_null() {
            return Err(invalid("len is NULL"));
        }
        // SAFETY: checked non-NULL.
        unsafe { len.write(list.len()) };
        Ok(())
    })
}

/// Frees a string peerlb returned (`peerlb_list_introspect`). NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a string from peerlb, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_string_free(s: *mut c_char) {
    guard_value((), || {
        if !s.is_null() {
            // SAFETY: from CString::into_raw.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use peerlb::{InFlight, PeerRef, Strategy};

    use super::*;
    use crate::error::peerlb_status::*;

    /// A strategy whose `choose` panics: the entry point must return `PEERLB_PANIC`.
    #[derive(Default)]
    struct Panicky(Mutex<Vec<PeerRef>>);

    impl Strategy for Panicky {
        fn name(&self) -> &str {
            "panicky"
        }
        fn add(&self, peer: &PeerRef) {
            self.0.lock().unwrap().push(peer.clone());
        }
        fn remove(&self, peer: &PeerRef) {
            self.0.lock().unwrap().retain(|p| !PeerRef::ptr_eq(p, peer));
        }
        fn choose(&self, _: &Request<'_>) -> Option<InFlight> {
            panic!("strategy exploded");
        }
    }

    #[test]
    fn a_panic_inside_an_entry_point_is_a_status() {
        let list =
            PeerList::new(ListOptions::default().custom_strategy(Arc::new(Panicky::default())))
                .unwrap();
        list.update(["a:1"], None::<&str>).unwrap();
        let raw = Box::into_raw(Box::new(peerlb_list { inner: list }));
        unsafe {
            assert_eq!(peerlb_list_start(raw), PEERLB_OK);
            let mut choice = std::mem::MaybeUninit::<peerlb_choice>::uninit();
            let req = peerlb_request {
                timeout_ms: 10,
                shard_key: std::ptr::null(),
                shard_key_len: 0,
            };
            assert_eq!(
                peerlb_list_choose(raw, &req, choice.as_mut_ptr()),
                PEERLB_PANIC
            );
            let msg = CStr::from_ptr(crate::error::peerlb_last_error_message());
            assert!(msg.to_str().unwrap().contains("strategy exploded"));
            // The list is still usable afterwards.
            assert_eq!(peerlb_list_stop(raw), PEERLB_OK);
            peerlb_list_free(raw);
        }
    }
}
