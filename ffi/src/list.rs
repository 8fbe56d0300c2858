//! Peer lists: creation, lifecycle, updates, choosing, and what a list tells about itself.

use std::ffi::c_char;
use std::sync::Arc;

use peerlb::{ListOptions, PeerList, PeerSpec, Request};

use crate::boundary::guard;
use crate::choice::{peerlb_choice, peerlb_request, request_from, shard_key_of};
use crate::error::{invalid, peerlb_status};
use crate::handle::{self, Handle, Owned};
use crate::options::peerlb_list_options;
use crate::transport::{
    connection_status_to_c, peerlb_connection_status, peerlb_transport_vtable, CTransport,
};

/// A peer list: peers, their lifecycle, and a strategy to choose among the available ones.
///
/// Ownership: made by `peerlb_list_new`, freed with `peerlb_list_free`.
/// Thread safety: every function taking a `peerlb_list` may be called from any number of
/// threads at once (including from transport and event callbacks), except
/// `peerlb_list_free`, which must be the last use.
pub struct peerlb_list {
    _private: [u8; 0],
}

impl Handle for peerlb_list {
    type Target = PeerList;
    type Ownership = Owned;
    const NAME: &'static str = "list";
}

/// A peer to add: `id_len` bytes of UTF-8 at `id` (no NUL needed; 1 to 1024 bytes) and a
/// weight (at least 1; use 1 when weights do not matter). A peer with a zone or a
/// priority is a `peerlb_placed_peer`.
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

/// A peer to add with its place in the fleet (`peerlb_list_update_placed`): its id and
/// weight as in `peerlb_peer_spec`, its zone (`zone_len` bytes of UTF-8 at `zone`; NULL or
/// empty for none; at most 1024 bytes, no NUL) and its priority level (0 is the highest;
/// traffic spills to higher numbers as lower ones lose health, Envoy's priority load).
#[repr(C)]
pub struct peerlb_placed_peer {
    /// The peer id's bytes (usually `host:port`).
    pub id: *const c_char,
    /// Its length in bytes.
    pub id_len: usize,
    /// Relative weight for weighting strategies, at least 1.
    pub weight: u32,
    /// The peer's zone (locality) bytes, or NULL for none (see
    /// `peerlb_list_options_set_local_zone`).
    pub zone: *const c_char,
    /// The zone's length in bytes (0 for none).
    pub zone_len: usize,
    /// The peer's priority level (0 is the highest).
    pub priority: u32,
}

/// A peer id to remove (or a backend of an upstream): `len` bytes of UTF-8 at `id`.
#[repr(C)]
pub struct peerlb_peer_id {
    /// The peer id's bytes.
    pub id: *const c_char,
    /// Its length in bytes.
    pub len: usize,
}

/// Reads a C array of peer specs; a NULL or non-UTF-8 id fails the whole array (empty,
/// over-long ids and weight 0 are left to the core, which reports them per peer).
///
/// # Safety
/// `specs` NULL or readable for `n` specs, each id readable for its length, during `'a`.
pub(crate) unsafe fn peer_specs(
    specs: *const peerlb_peer_spec,
    n: usize,
    name: &str,
) -> Result<Vec<PeerSpec>, peerlb::Error> {
    // SAFETY: forwarded contract.
    let specs = unsafe { handle::slice(specs, n, name) }?;
    handle::convert_each(specs, |i, s| {
        // SAFETY: forwarded contract.
        let id = unsafe { handle::str_at(s.id, s.id_len, format_args!("{name}[{i}].id")) }?;
        Ok(PeerSpec::weighted(id, s.weight))
    })
}

/// Reads a C array of placed peers; a NULL or non-UTF-8 id or zone fails the whole array
/// (empty or over-long ids and zones, zones with NUL and weight 0 are left to the core,
/// which reports them per peer).
///
/// # Safety
/// `peers` NULL or readable for `n` peers, each id and zone readable for its length.
pub(crate) unsafe fn placed_peers(
    peers: *const peerlb_placed_peer,
    n: usize,
    name: &str,
) -> Result<Vec<PeerSpec>, peerlb::Error> {
    // SAFETY: forwarded contract.
    let peers = unsafe { handle::slice(peers, n, name) }?;
    handle::convert_each(peers, |i, p| {
        // SAFETY: forwarded contract.
        let id = unsafe { handle::str_at(p.id, p.id_len, format_args!("{name}[{i}].id")) }?;
        // SAFETY: forwarded contract.
        let zone = unsafe { handle::str_at(p.zone, p.zone_len, format_args!("{name}[{i}].zone")) }?;
        let mut spec = PeerSpec::weighted(id, p.weight).with_priority(p.priority);
        if !zone.is_empty() {
            // As given: an over-long zone or one with a NUL is the core's to refuse.
            spec.zone = Some(zone.to_owned());
        }
        Ok(spec)
    })
}

/// Reads a C array of peer ids (borrowed); a NULL or non-UTF-8 id fails the whole array.
///
/// # Safety
/// `ids` NULL or readable for `n` ids, each readable for its length, during `'a`.
pub(crate) unsafe fn peer_ids<'a>(
    ids: *const peerlb_peer_id,
    n: usize,
    name: &str,
) -> Result<Vec<&'a str>, peerlb::Error> {
    // SAFETY: forwarded contract.
    let ids = unsafe { handle::slice(ids, n, name) }?;
    handle::convert_each(ids, |i, p| {
        // SAFETY: forwarded contract.
        unsafe { handle::str_at(p.id, p.len, format_args!("{name}[{i}].id")) }
    })
}

/// Creates an idle list. `opts` may be NULL (the core's defaults); `transport` may be NULL
/// (the built-in always-available transport, or the one `opts` names with
/// `peerlb_list_options_set_transport`) or a vtable of C callbacks, which is copied.
///
/// Ownership: the caller frees `*out` with `peerlb_list_free`; `opts` is only read. On
/// success the list owns `transport->userdata` (see `peerlb_transport_vtable`); on
/// failure nothing was taken.
/// Errors: `PEERLB_INVALID_ARGUMENT` for a NULL `out`, a vtable without `retain` or
/// `release` or with a non-UTF-8 name, or both a vtable and a transport spec.
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
        // SAFETY: forwarded contract.
        let out = unsafe { handle::out(out, "out") }?;
        // SAFETY: forwarded contract.
        let (mut options, spec) = match unsafe { handle::borrow_optional(opts) } {
            Some(o) => (o.list.clone(), o.transport_spec.clone()),
            None => (ListOptions::default(), None),
        };
        // SAFETY: forwarded contract.
        let vtable = unsafe { handle::borrow_optional(transport) };
        let mut foreign = None;
        match (spec, vtable) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "both a transport spec (peerlb_list_options_set_transport) and a transport vtable were given",
                ))
            }
            (Some(spec), None) => options = options.transport(peerlb::transport_from_spec(&spec)?),
            (None, Some(vtable)) => {
                // SAFETY: the vtable's fields follow its documented contract.
                let t = Arc::new(unsafe { CTransport::from_vtable(vtable) }?);
                options = options.transport(t.clone());
                foreign = Some(t);
            }
            (None, None) => {}
        }
        let list = PeerList::new(options)?;
        if let Some(t) = foreign {
            // Only a list that exists owns userdata; a failed new left it to the caller.
            t.adopt_userdata();
        }
        out.write(handle::into_raw(list));
        Ok(())
    })
}

/// Frees a list. A running list releases its peers first (through the transport), then the
/// transport's `free_userdata` runs. Unfinished choices stay valid and must still be
/// finished. NULL is ignored.
///
/// Ownership: takes `list` back. Thread safety: no other call may use the list during or
/// after this one.
///
/// # Safety
/// `list` must be NULL or from `peerlb_list_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_free(list: *mut peerlb_list) {
    // SAFETY: forwarded contract.
    unsafe { handle::free(list) }
}

/// Starts the list: retains every peer through the transport.
///
/// Ownership: borrows `list` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` (NULL list), `PEERLB_ALREADY_STARTED`, and
/// `PEERLB_TRANSPORT_FAILED` when retaining some peers failed (those peers are removed;
/// the list runs).
///
/// # Safety
/// `list` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_start(list: *const peerlb_list) -> peerlb_status {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::borrow(list) }?.start())
}

/// Stops the list: releases every peer (they stay in the list) and wakes every waiting
/// `peerlb_list_choose`, which fails with `PEERLB_NOT_STARTED`.
///
/// Ownership: borrows `list` for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` (NULL list), `PEERLB_NOT_STARTED`,
/// `PEERLB_TRANSPORT_FAILED` (release failed; the peers are released anyway).
///
/// # Safety
/// `list` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_stop(list: *const peerlb_list) -> peerlb_status {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::borrow(list) }?.stop())
}

/// Removes `n_removes` peers, then adds `n_adds`. Every addition and removal that can be
/// applied is; the failures come back together (`peerlb_last_error_codes` lists them):
/// `PEERLB_PEER_ALREADY_IN_LIST`, `PEERLB_PEER_NOT_IN_LIST`, `PEERLB_INVALID_ARGUMENT`
/// (empty or over-long id, weight 0), `PEERLB_TRANSPORT_FAILED`, or
/// `PEERLB_MULTIPLE_ERRORS` when they differ.
///
/// A malformed call — NULL list, NULL array with a non-zero count, a count no array can
/// have, NULL id with a non-zero length, an id that is not UTF-8 — is
/// `PEERLB_INVALID_ARGUMENT` and changes nothing.
///
/// Ownership: the arrays and ids are the caller's; they are read during the call (ids are
/// copied).
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
        // SAFETY: the pointers are as `# Safety` says.
        let (list, additions, removals) = unsafe {
            (
                handle::borrow(list)?,
                peer_specs(adds, n_adds, "adds")?,
                peer_ids(removes, n_removes, "removes")?,
            )
        };
        list.update(additions, removals)
    })
}

/// `peerlb_list_update` for peers with a zone and a priority (`peerlb_placed_peer`): removes
/// `n_removes` peers, then adds `n_adds`, with the same rules and errors, plus
/// `PEERLB_INVALID_ARGUMENT` for a zone over 1024 bytes or with a NUL (that peer only) and
/// for a NULL zone with a non-zero length or a zone that is not UTF-8 (the whole call).
///
/// Ownership: the arrays, ids and zones are the caller's; they are read during the call.
///
/// # Safety
/// `list` NULL or live; `adds`/`removes` NULL or readable for their counts, with each id
/// and zone readable for its length.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_update_placed(
    list: *const peerlb_list,
    adds: *const peerlb_placed_peer,
    n_adds: usize,
    removes: *const peerlb_peer_id,
    n_removes: usize,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, additions, removals) = unsafe {
            (
                handle::borrow(list)?,
                placed_peers(adds, n_adds, "adds")?,
                peer_ids(removes, n_removes, "removes")?,
            )
        };
        list.update(additions, removals)
    })
}

/// Chooses an available peer for one request, waiting (blocking the calling thread) up to
/// `request->timeout_ms` for one if none is available. `request` may be NULL (no timeout,
/// no shard key).
///
/// On success `*out` is the choice, which the caller must end with `peerlb_choice_finish`.
/// Does not allocate when a peer is available. On failure `*out` is untouched.
///
/// Ownership: borrows `list` and `request` for the call; `*out` is the caller's struct.
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
        // SAFETY: the pointers are as `# Safety` says.
        let (list, out) = unsafe { (handle::borrow(list)?, handle::out(out, "out")?) };
        // SAFETY: as above.
        let key = unsafe { shard_key_of(request) }?;
        // The fast path: a peer now, without reading the clock for a deadline.
        let mut now = Request::new();
        if let Some(key) = key {
            now = now.with_shard_key(key);
        }
        match list.try_choose(&now) {
            Some(choice) => {
                out.write(peerlb_choice::from_choice(choice));
                Ok(())
            }
            // SAFETY: as above.
            None => unsafe { choose_or_wait(list, request, out) },
        }
    })
}

/// `peerlb_list_choose` when no peer could be chosen at once: the core decides (chosen
/// after all, failed at once, or a wait until the request's deadline). Kept out of line,
/// so the fast path stays small.
///
/// # Safety
/// `request` NULL or valid.
#[cold]
#[inline(never)]
unsafe fn choose_or_wait(
    list: &PeerList,
    request: *const peerlb_request,
    out: handle::Out<'_, peerlb_choice>,
) -> Result<(), peerlb::Error> {
    // SAFETY: forwarded contract.
    let request = unsafe { request_from(request) }?;
    let choice = list.choose_now(&request).wait()?;
    out.write(peerlb_choice::from_choice(choice));
    Ok(())
}

/// A JSON snapshot of the list:
/// `{"strategy":"round-robin","transport":"always-available","state":"running",
/// "summary":"Running (2/3 available)","available":2,"total":3,"panic":false,
/// "ejected":0,"disabled":0,"chosen":10,"failures":1,"ejections":0,"peers":[...]}`, the
/// peers as `peerlb_list_backends` gives them. `strategy` is the full spec string
/// (`"hash-ring?bounded=1.25"`).
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
        // SAFETY: the pointers are as `# Safety` says.
        let (list, json) = unsafe { (handle::borrow(list)?, handle::out(json, "json")?) };
        json.write(handle::string_out(list.introspect().to_json()));
        Ok(())
    })
}

/// Every backend with its admin and ejection state, as a JSON array in the order they were
/// added: `[{"id":"a:1","status":"available","pending":0,"weight":1,"admin":"enabled",
/// "ejected":false,"ejected_for_ms":0,"ejections":0,"consecutive_failures":0,"chosen":3,
/// "failures":0}, ...]` (the keys of `peerlb_list_introspect`'s peers; `status` is
/// `"uninitialized"` on an idle list).
///
/// Ownership: the caller frees `*json` with `peerlb_string_free`.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments.
///
/// # Safety
/// `list` NULL or live; `json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_backends(
    list: *const peerlb_list,
    json: *mut *mut c_char,
) -> peerlb_status {
    guard(|| {
        // SAFETY: the pointers are as `# Safety` says.
        let (list, json) = unsafe { (handle::borrow(list)?, handle::out(json, "json")?) };
        let text = serde_json::to_string(&list.list_backends()).expect("backends serialize");
        json.write(handle::string_out(text));
        Ok(())
    })
}

/// Whether the list is running (started and not stopped), in `*running`.
///
/// Ownership: borrows `list` for the call.
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
        let list = unsafe { handle::borrow(list) }?;
        // SAFETY: forwarded contract.
        unsafe { handle::out(running, "running") }?.write(list.is_running());
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
/// Ownership: borrows every argument for the call; `*status` is the caller's.
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
        // SAFETY: the pointers are as `# Safety` says.
        let (list, id, status) = unsafe {
            (
                handle::borrow(list)?,
                handle::str_at(id, len, "id")?,
                handle::out(status, "status")?,
            )
        };
        let got = list
            .peer_status(id)
            .ok_or_else(|| peerlb::Error::PeerNotInList(id.to_owned()))?;
        status.write(peerlb_peer_status {
            connection_status: connection_status_to_c(got.connection_status),
            pending: got.pending,
        });
        Ok(())
    })
}

/// How many peers the list has (retained or not), in `*len`.
///
/// Ownership: borrows `list` for the call.
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
        let list = unsafe { handle::borrow(list) }?;
        // SAFETY: forwarded contract.
        unsafe { handle::out(len, "len") }?.write(list.len());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use peerlb::{InFlight, PeerRef, Request, Strategy};

    use super::*;
    use crate::error::peerlb_status::*;

    /// A strategy whose `choose` panics: the entry point must return `PEERLB_INTERNAL`.
    struct Panicky;

    impl Strategy for Panicky {
        fn name(&self) -> &str {
            "panicky"
        }
        fn update(&self, _added: &[PeerRef], _removed: &[PeerRef]) {}
        fn choose(&self, _: &Request<'_>) -> Option<InFlight> {
            panic!("strategy exploded");
        }
    }

    #[test]
    fn a_panic_inside_an_entry_point_is_internal_and_leaves_the_list_usable() {
        let list =
            PeerList::new(ListOptions::default().custom_strategy(Arc::new(Panicky))).unwrap();
        list.update(["a:1"], None::<&str>).unwrap();
        let raw = handle::into_raw::<peerlb_list>(list);
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
                PEERLB_INTERNAL
            );
            let msg = CStr::from_ptr(crate::error::peerlb_last_error_message());
            assert!(msg.to_str().unwrap().contains("strategy exploded"));
            let mut len = 0;
            assert_eq!(peerlb_list_len(raw, &mut len), PEERLB_OK);
            assert_eq!(len, 1);
            assert_eq!(peerlb_list_stop(raw), PEERLB_OK);
            peerlb_list_free(raw);
        }
    }
}
