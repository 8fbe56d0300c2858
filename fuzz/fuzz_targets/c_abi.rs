//! The C ABI's entry points fed arbitrary bytes for every string and length argument (ids
//! with any bytes and lengths, NULL pointers, non-UTF-8, embedded NULs; spec strings,
//! messages, paths, DNS names), arbitrary enum values and numbers. Every call returns a
//! status (with a message when it is not `PEERLB_OK`), none crashes, and the list is still
//! usable afterwards.
//!
//! Nothing here reaches the network: DNS bindings are made and freed but never started,
//! transport specs are parsed on options no list uses, Upstream health checks are a C
//! callback, and file paths point under a directory that does not exist.
#![no_main]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use peerlb_ffi::error::{
    peerlb_last_error_codes, peerlb_last_error_message, peerlb_last_error_peer,
    peerlb_last_error_remote_code, peerlb_status_str,
};
use peerlb_ffi::*;

/// Reads the call script.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A length byte, then that many arbitrary bytes.
    fn bytes(&mut self) -> Vec<u8> {
        let n = usize::from(self.byte()).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b.to_vec()
    }

    /// Arbitrary bytes as a C string (cut at the first NUL, as C would read them).
    fn cstring(&mut self) -> Vec<u8> {
        let mut b = self.bytes();
        if let Some(nul) = b.iter().position(|&c| c == 0) {
            b.truncate(nul);
        }
        b.push(0);
        b
    }
}

/// `(ptr, len)` for `bytes`, or NULL with its length when `null` (which must be refused
/// unless the length is 0).
fn id_arg(bytes: &[u8], null: bool) -> (*const c_char, usize) {
    if null {
        (ptr::null(), bytes.len())
    } else {
        (bytes.as_ptr().cast(), bytes.len())
    }
}

/// Checks a status: a known code, and a readable message when it is an error.
fn checked(status: peerlb_status) -> peerlb_status {
    if status != peerlb_status::PEERLB_OK {
        let message = peerlb_last_error_message();
        assert!(!message.is_null(), "an error without a message: {status:?}");
        // SAFETY: the library returns a valid, NUL-terminated, thread-local message.
        let text = unsafe { CStr::from_ptr(message) };
        assert!(
            !text.to_bytes().is_empty(),
            "an empty message for {status:?}"
        );
        // SAFETY: status_str accepts any value.
        let name = unsafe { CStr::from_ptr(peerlb_status_str(status as u32)) };
        assert!(!name.to_bytes().is_empty());
    }
    status
}

/// Subscribers the C transport was given (cloned), to report arbitrary statuses through.
static SUBSCRIBERS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

unsafe extern "C" fn retain(
    _userdata: *mut c_void,
    id: *const c_char,
    len: usize,
    subscriber: *const peerlb_subscriber,
) -> c_int {
    // A transport that refuses ids starting with '!'.
    // SAFETY: the library passes `len` readable bytes.
    let id = unsafe { std::slice::from_raw_parts(id.cast::<u8>(), len) };
    if id.first() == Some(&b'!') {
        return 1;
    }
    let mut clone = ptr::null_mut();
    // SAFETY: a valid subscriber for the duration of the call.
    if unsafe { peerlb_subscriber_clone(subscriber, &mut clone) } == peerlb_status::PEERLB_OK {
        // SAFETY: as above; reports `available` from inside retain.
        unsafe {
            peerlb_subscriber_set_status(subscriber, PEERLB_CONNECTION_AVAILABLE, ptr::null_mut())
        };
        SUBSCRIBERS.lock().unwrap().push(clone as usize);
    }
    0
}

unsafe extern "C" fn release(
    _userdata: *mut c_void,
    _id: *const c_char,
    _len: usize,
    _subscriber: *const peerlb_subscriber,
) -> c_int {
    0
}

unsafe extern "C" fn healthy(_userdata: *mut c_void, _id: *const c_char, _len: usize) -> c_int {
    0
}

fn transport() -> peerlb_transport_vtable {
    peerlb_transport_vtable {
        userdata: ptr::null_mut(),
        name: c"fuzz".as_ptr(),
        retain: Some(retain),
        release: Some(release),
        free_userdata: None,
    }
}

/// A list made from options the script sets (strategy, ejection): the default one when
/// the script's options are refused.
unsafe fn new_list(script: &mut Script<'_>) -> *mut peerlb_list {
    let mut opts = ptr::null_mut();
    unsafe {
        assert_eq!(peerlb_list_options_new(&mut opts), peerlb_status::PEERLB_OK);
        let strategy = script.cstring();
        checked(peerlb_list_options_set_strategy(
            opts,
            strategy.as_ptr().cast(),
        ));
        let ejection = script.cstring();
        checked(peerlb_list_options_set_ejection(
            opts,
            ejection.as_ptr().cast(),
        ));
        checked(peerlb_list_options_set_capacity(
            opts,
            script.u32() as usize,
        ));
        checked(peerlb_list_options_set_fail_fast(
            opts,
            script.byte() & 1 == 1,
        ));
        let vtable = transport();
        let mut list = ptr::null_mut();
        if checked(peerlb_list_new(opts, &vtable, &mut list)) != peerlb_status::PEERLB_OK {
            assert_eq!(
                peerlb_list_new(ptr::null(), &vtable, &mut list),
                peerlb_status::PEERLB_OK
            );
        }
        peerlb_list_options_free(opts);
        list
    }
}

unsafe fn free_list(list: *mut peerlb_list) {
    unsafe {
        peerlb_list_free(list);
        for s in SUBSCRIBERS.lock().unwrap().drain(..) {
            peerlb_subscriber_free(s as *mut peerlb_subscriber);
        }
    }
}

fn json(s: *mut c_char) {
    assert!(!s.is_null());
    // SAFETY: a string the library allocated.
    let text = unsafe { CStr::from_ptr(s) }.to_str().expect("UTF-8 JSON");
    serde_json::from_str::<serde_json::Value>(text).expect("valid JSON");
    // SAFETY: freed once, with the library's function.
    unsafe { peerlb_string_free(s) };
}

unsafe fn call(list: &mut *mut peerlb_list, script: &mut Script<'_>) {
    let op = script.byte();
    unsafe {
        match op % 24 {
            0 => {
                free_list(*list);
                *list = new_list(script);
            }
            1 => {
                // Parsed only: no list is made from these options, so nothing is probed.
                let mut opts = ptr::null_mut();
                assert_eq!(peerlb_list_options_new(&mut opts), peerlb_status::PEERLB_OK);
                let spec = script.cstring();
                checked(peerlb_list_options_set_transport(
                    opts,
                    spec.as_ptr().cast(),
                ));
                peerlb_list_options_free(opts);
            }
            2 => {
                // Each addition: id bytes, a NULL flag, a weight; each removal: id bytes, a
                // NULL flag.
                let adds: Vec<(Vec<u8>, bool, u32)> = (0..script.byte() % 4)
                    .map(|_| (script.bytes(), script.byte() == 0xff, script.u32() % 5))
                    .collect();
                let removes: Vec<(Vec<u8>, bool)> = (0..script.byte() % 3)
                    .map(|_| (script.bytes(), script.byte() == 0xff))
                    .collect();
                let adds: Vec<peerlb_peer_spec> = adds
                    .iter()
                    .map(|(id, null, weight)| {
                        let (p, len) = id_arg(id, *null);
                        peerlb_peer_spec {
                            id: p,
                            id_len: len,
                            weight: *weight,
                        }
                    })
                    .collect();
                let removes: Vec<peerlb_peer_id> = removes
                    .iter()
                    .map(|(id, null)| {
                        let (p, len) = id_arg(id, *null);
                        peerlb_peer_id { id: p, len }
                    })
                    .collect();
                let null_arrays = script.byte() == 0xff;
                checked(peerlb_list_update(
                    *list,
                    if null_arrays {
                        ptr::null()
                    } else {
                        adds.as_ptr()
                    },
                    adds.len(),
                    if null_arrays {
                        ptr::null()
                    } else {
                        removes.as_ptr()
                    },
                    removes.len(),
                ));
            }
            3 => {
                let key = script.bytes();
                let (k, klen) = id_arg(&key, script.byte() == 0xff);
                let request = peerlb_request {
                    timeout_ms: if script.byte() & 1 == 0 {
                        0
                    } else {
                        PEERLB_NO_TIMEOUT
                    },
                    shard_key: k.cast(),
                    shard_key_len: klen,
                };
                let mut choice = std::mem::zeroed::<peerlb_choice>();
                if checked(peerlb_list_choose(*list, &request, &mut choice))
                    == peerlb_status::PEERLB_OK
                {
                    let mut id = ptr::null();
                    let mut len = 0;
                    checked(peerlb_choice_peer(&choice, &mut id, &mut len));
                    let outcome = u32::from(script.byte() % 6); // 4 and 5 are not outcomes
                    let latency = i64::from(script.u32() as i32);
                    if checked(peerlb_choice_finish(&mut choice, outcome, latency))
                        != peerlb_status::PEERLB_OK
                    {
                        checked(peerlb_choice_finish(
                            &mut choice,
                            PEERLB_OUTCOME_CANCELLED,
                            -1,
                        ));
                    }
                    // A second finish of the same choice is refused, not a double free.
                    checked(peerlb_choice_finish(&mut choice, PEERLB_OUTCOME_OK, -1));
                }
            }
            4 => {
                let id = script.bytes();
                let (p, len) = id_arg(&id, script.byte() == 0xff);
                let mut result = 0;
                let f = [
                    peerlb_list_disable,
                    peerlb_list_enable,
                    peerlb_list_reset,
                    peerlb_list_delete,
                ][usize::from(script.byte() % 4)];
                checked(f(*list, p, len, &mut result));
                let _ = CStr::from_ptr(peerlb_admin_result_str(result));
            }
            5 => {
                let id = script.bytes();
                let (p, len) = id_arg(&id, script.byte() == 0xff);
                let mut status = std::mem::zeroed::<peerlb_peer_status>();
                checked(peerlb_list_peer_status(*list, p, len, &mut status));
            }
            6 => {
                checked(if script.byte() & 1 == 0 {
                    peerlb_list_start(*list)
                } else {
                    peerlb_list_stop(*list)
                });
            }
            7 => {
                let mut retry = ptr::null_mut();
                if checked(peerlb_retry_new(
                    u32::from(script.byte()),
                    i64::from(script.byte()) - 1,
                    ptr::null(),
                    &mut retry,
                )) != peerlb_status::PEERLB_OK
                {
                    return;
                }
                for _ in 0..3 {
                    let request = peerlb_request {
                        timeout_ms: 0,
                        shard_key: ptr::null(),
                        shard_key_len: 0,
                    };
                    let mut choice = std::mem::zeroed::<peerlb_choice>();
                    if checked(peerlb_retry_choose(retry, *list, &request, &mut choice))
                        != peerlb_status::PEERLB_OK
                    {
                        break;
                    }
                    let text = script.cstring();
                    let message = if script.byte() == 0xff {
                        ptr::null()
                    } else {
                        text.as_ptr().cast()
                    };
                    let status = match script.byte() % 3 {
                        0 => peerlb_retry_failed(retry, &mut choice, message, -1),
                        1 => peerlb_retry_declined(retry, &mut choice, message, -1),
                        _ => peerlb_retry_succeeded(retry, &mut choice, -1),
                    };
                    if checked(status) != peerlb_status::PEERLB_RETRY_EXHAUSTED
                        && status != peerlb_status::PEERLB_OK
                    {
                        // Refused (e.g. a NULL message): end the attempt plainly.
                        checked(peerlb_choice_finish(
                            &mut choice,
                            PEERLB_OUTCOME_CANCELLED,
                            -1,
                        ));
                    }
                }
                peerlb_retry_free(retry);
            }
            8 => {
                // Under a directory that does not exist: the read fails, nothing is opened.
                let mut path = b"/nonexistent-peerlb-fuzz/".to_vec();
                let name = script.cstring();
                path.extend(name.iter().map(|&c| if c == b'/' { b'_' } else { c }));
                let mut updater = ptr::null_mut();
                if checked(peerlb_updater_bind_file(
                    *list,
                    path.as_ptr().cast(),
                    i64::from(script.byte()) - 1,
                    &mut updater,
                )) == peerlb_status::PEERLB_OK
                {
                    checked(peerlb_updater_start(updater));
                    let mut code = peerlb_status::PEERLB_OK;
                    let mut message = ptr::null_mut();
                    if checked(peerlb_updater_last_error(updater, &mut code, &mut message))
                        == peerlb_status::PEERLB_OK
                        && !message.is_null()
                    {
                        peerlb_string_free(message);
                    }
                    peerlb_updater_free(updater);
                }
            }
            9 => {
                // Made and freed, never started: no query is sent anywhere.
                let name = script.cstring();
                let nameserver = script.cstring();
                let options = peerlb_dns_options {
                    name: if script.byte() == 0xff {
                        ptr::null()
                    } else {
                        name.as_ptr().cast()
                    },
                    record: u32::from(script.byte() % 6),
                    port: u16::from(script.byte()),
                    nameserver: if script.byte() & 1 == 0 {
                        ptr::null()
                    } else {
                        nameserver.as_ptr().cast()
                    },
                    min_interval_ms: i64::from(script.u32() as i32),
                    max_interval_ms: i64::from(script.u32() as i32),
                    timeout_ms: i64::from(script.u32() as i32),
                    empty_threshold: script.u32(),
                };
                let mut updater = ptr::null_mut();
                if checked(peerlb_updater_bind_dns(*list, &options, &mut updater))
                    == peerlb_status::PEERLB_OK
                {
                    peerlb_updater_free(updater);
                }
            }
            10 => {
                let ids: Vec<Vec<u8>> = (0..script.byte() % 4).map(|_| script.bytes()).collect();
                let peers: Vec<peerlb_peer_spec> = ids
                    .iter()
                    .map(|id| peerlb_peer_spec {
                        id: id.as_ptr().cast(),
                        id_len: id.len(),
                        weight: u32::from(script.byte() % 3),
                    })
                    .collect();
                let mut updater = ptr::null_mut();
                if checked(peerlb_updater_bind_static(
                    *list,
                    peers.as_ptr(),
                    peers.len(),
                    &mut updater,
                )) == peerlb_status::PEERLB_OK
                {
                    checked(peerlb_updater_start(updater));
                    let mut len = 0;
                    checked(peerlb_updater_len(updater, &mut len));
                    checked(peerlb_updater_stop(updater));
                    peerlb_updater_free(updater);
                }
            }
            11 => {
                let ids: Vec<Vec<u8>> = (0..script.byte() % 4).map(|_| script.bytes()).collect();
                let backends: Vec<peerlb_peer_id> = ids
                    .iter()
                    .map(|id| peerlb_peer_id {
                        id: id.as_ptr().cast(),
                        len: id.len(),
                    })
                    .collect();
                let mut opts = std::mem::zeroed::<peerlb_upstream_options>();
                checked(peerlb_upstream_options_default(&mut opts));
                opts.health_check_interval_ms = 0; // checks only when asked
                opts.initial_score = f64::from(script.byte() as i8);
                opts.fail_delta = -f64::from(script.byte() % 3);
                let check = peerlb_health_check_vtable {
                    userdata: ptr::null_mut(),
                    check: Some(healthy),
                    free_userdata: None,
                };
                let mut up = ptr::null_mut();
                if checked(peerlb_upstream_new(
                    backends.as_ptr(),
                    backends.len(),
                    &opts,
                    &check,
                    &mut up,
                )) != peerlb_status::PEERLB_OK
                {
                    return;
                }
                let id = script.bytes();
                let (p, len) = id_arg(&id, script.byte() == 0xff);
                checked(peerlb_upstream_up(up, p, len));
                checked(peerlb_upstream_down(up, p, len));
                let mut score = 0.0;
                checked(peerlb_upstream_score(up, p, len, &mut score));
                checked(peerlb_upstream_check_now(up));
                let mut picked = ptr::null_mut();
                if checked(peerlb_upstream_pick(up, &mut picked)) == peerlb_status::PEERLB_OK {
                    peerlb_string_free(picked);
                }
                checked(peerlb_upstream_reconcile(
                    up,
                    backends.as_ptr(),
                    backends.len().saturating_sub(1),
                ));
                checked(peerlb_upstream_shutdown(up));
                peerlb_upstream_free(up);
            }
            12 => {
                let v = script.u32();
                let _ = CStr::from_ptr(peerlb_status_str(v));
                let _ = CStr::from_ptr(peerlb_event_kind_str(v));
                let _ = CStr::from_ptr(peerlb_admin_result_str(v));
            }
            13 => {
                let mut s = ptr::null_mut();
                if checked(peerlb_list_introspect(*list, &mut s)) == peerlb_status::PEERLB_OK {
                    json(s);
                }
                let mut s = ptr::null_mut();
                if checked(peerlb_list_backends(*list, &mut s)) == peerlb_status::PEERLB_OK {
                    json(s);
                }
            }
            14 => {
                let subscribers = SUBSCRIBERS.lock().unwrap().clone();
                if let Some(s) = subscribers.get(usize::from(script.byte())) {
                    let mut accepted = false;
                    checked(peerlb_subscriber_set_status(
                        *s as *const peerlb_subscriber,
                        script.u32() % 5, // 3 and 4 are not statuses
                        &mut accepted,
                    ));
                }
            }
            15 => {
                let mut codes = [peerlb_status::PEERLB_OK; 4];
                let n = peerlb_last_error_codes(codes.as_mut_ptr(), usize::from(script.byte() % 5));
                assert!(n < 1 << 20);
            }
            op => call_more(*list, script, op % 24),
        }
    }
}

/// A request that never waits (a fuzz run must not block), with an arbitrary shard key.
fn no_wait(key: &[u8], null: bool) -> peerlb_request {
    let (k, klen) = id_arg(key, null);
    peerlb_request {
        timeout_ms: 0,
        shard_key: k.cast(),
        shard_key_len: klen,
    }
}

/// Frees a string the library returned (when it returned one).
unsafe fn free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: a string from the library, freed once.
        unsafe { peerlb_string_free(s) };
    }
}

/// An event callback that calls back into its list (a read, which must not deadlock).
unsafe extern "C" fn on_event(event: *const peerlb_event, user_data: *mut c_void) {
    // SAFETY: the library passes a valid event; `user_data` is the live list.
    unsafe {
        let e = &*event;
        let peer = std::slice::from_raw_parts(e.peer.cast::<u8>(), e.peer_len);
        assert!(
            std::str::from_utf8(peer).is_ok(),
            "an event's peer is not UTF-8"
        );
        let mut len = 0;
        checked(peerlb_list_len(user_data as *const peerlb_list, &mut len));
    }
}

unsafe extern "C" fn on_session_event(event: *const peerlb_session_event, user_data: *mut c_void) {
    // SAFETY: as in `on_event`.
    unsafe {
        let _ = CStr::from_ptr(peerlb_session_event_kind_str((*event).kind));
        let mut s = ptr::null_mut();
        if checked(peerlb_list_introspect(
            user_data as *const peerlb_list,
            &mut s,
        )) == peerlb_status::PEERLB_OK
        {
            json(s);
        }
    }
}

/// The entry points of admin queries, sessions, subscriptions, retry codes and budgets,
/// manual clocks, etcd bindings and the thread's last error.
unsafe fn call_more(list: *mut peerlb_list, script: &mut Script<'_>, op: u8) {
    unsafe {
        match op {
            16 => {
                let id = script.bytes();
                let (p, len) = id_arg(&id, script.byte() == 0xff);
                let mut flag = false;
                checked(peerlb_list_available(list, p, len, &mut flag));
                checked(peerlb_list_uninitialized(list, p, len, &mut flag));
                let mut s = ptr::null_mut();
                checked(peerlb_list_backend_config(list, p, len, &mut s));
                if !s.is_null() {
                    json(s);
                }
                let mut result = 0;
                checked(peerlb_list_failover(list, p, len, &mut result));
                let _ = CStr::from_ptr(peerlb_admin_result_str(result));
            }
            17 => {
                // Arbitrary bytes as the backend's JSON (or NULL with a length).
                let data = script.bytes();
                let (p, len) = id_arg(&data, script.byte() == 0xff);
                // The answer is written on failures too (once the arguments are valid).
                let mut s = ptr::null_mut();
                checked(peerlb_list_add_backend(list, p, len, &mut s));
                if !s.is_null() {
                    json(s);
                }
            }
            18 => {
                let key = script.bytes();
                let request = no_wait(&key, script.byte() == 0xff);
                let mut session = ptr::null_mut();
                if checked(peerlb_session_open(list, &request, &mut session))
                    != peerlb_status::PEERLB_OK
                {
                    return;
                }
                for _ in 0..script.byte() % 4 {
                    let reason = script.cstring();
                    let reason = if script.byte() == 0xff {
                        ptr::null()
                    } else {
                        reason.as_ptr().cast::<c_char>()
                    };
                    let code = i64::from(script.u32() as i32);
                    let code = if script.byte() & 1 == 0 {
                        ptr::null()
                    } else {
                        &code as *const i64
                    };
                    match script.byte() % 4 {
                        0 => {
                            checked(peerlb_session_decline(session, reason, code));
                        }
                        1 => {
                            let mut peer = ptr::null_mut();
                            checked(peerlb_session_failover(
                                session, reason, code, &request, &mut peer,
                            ));
                            free_string(peer);
                        }
                        2 => {
                            checked(peerlb_session_ok(session));
                        }
                        _ => {
                            let mut id = 0;
                            checked(peerlb_session_id(session, &mut id));
                            let mut peer = ptr::null_mut();
                            checked(peerlb_session_peer(session, &mut peer));
                            free_string(peer);
                            let (mut open, mut bound, mut asked) = (false, false, false);
                            checked(peerlb_session_state(session, &mut open, &mut bound));
                            checked(peerlb_session_failover_requested(session, &mut asked));
                        }
                    }
                }
                checked(peerlb_session_close(session));
            }
            19 => {
                // Subscribers that call back into the list, then changes that give events.
                let mut events = ptr::null_mut();
                let mut sessions = ptr::null_mut();
                let a = checked(peerlb_list_subscribe(
                    list,
                    Some(on_event),
                    list.cast(),
                    &mut events,
                ));
                let b = checked(peerlb_list_subscribe_sessions(
                    list,
                    Some(on_session_event),
                    list.cast(),
                    &mut sessions,
                ));
                let id = script.bytes();
                let add = peerlb_peer_spec {
                    id: id.as_ptr().cast(),
                    id_len: id.len(),
                    weight: 1,
                };
                checked(peerlb_list_update(list, &add, 1, ptr::null(), 0));
                let mut result = 0;
                checked(peerlb_list_disable(list, add.id, add.id_len, &mut result));
                checked(peerlb_list_enable(list, add.id, add.id_len, &mut result));
                let request = no_wait(&[], true);
                let mut session = ptr::null_mut();
                if checked(peerlb_session_open(list, &request, &mut session))
                    == peerlb_status::PEERLB_OK
                {
                    checked(peerlb_session_close(session));
                }
                if a == peerlb_status::PEERLB_OK {
                    peerlb_subscription_free(events);
                }
                if b == peerlb_status::PEERLB_OK {
                    peerlb_subscription_free(sessions);
                }
            }
            20 => {
                let clock = if script.byte() & 1 == 0 {
                    ptr::null_mut()
                } else {
                    let mut c = ptr::null_mut();
                    assert_eq!(peerlb_manual_clock_new(&mut c), peerlb_status::PEERLB_OK);
                    c
                };
                let mut budget = ptr::null_mut();
                let made = checked(peerlb_retry_budget_new(
                    f64::from(script.u32() as i32) / 1000.0,
                    i64::from(script.u32() as i32),
                    i64::from(script.u32() as i32),
                    clock,
                    &mut budget,
                )) == peerlb_status::PEERLB_OK;
                let mut retry = ptr::null_mut();
                if checked(peerlb_retry_new(
                    u32::from(script.byte() % 6),
                    0,
                    if made { budget } else { ptr::null() },
                    &mut retry,
                )) == peerlb_status::PEERLB_OK
                {
                    for _ in 0..3 {
                        let request = no_wait(&[], true);
                        let mut choice = std::mem::zeroed::<peerlb_choice>();
                        if checked(peerlb_retry_choose(retry, list, &request, &mut choice))
                            != peerlb_status::PEERLB_OK
                        {
                            break;
                        }
                        let text = script.cstring();
                        let code = i64::from(script.u32() as i32);
                        let status = if script.byte() & 1 == 0 {
                            peerlb_retry_failed_with_code(
                                retry,
                                &mut choice,
                                text.as_ptr().cast(),
                                code,
                                -1,
                            )
                        } else {
                            peerlb_retry_declined_with_code(
                                retry,
                                &mut choice,
                                text.as_ptr().cast(),
                                code,
                                -1,
                            )
                        };
                        if checked(status) != peerlb_status::PEERLB_OK {
                            // The call's final error: its peer and remote code, if any.
                            let _ = CStr::from_ptr(peerlb_last_error_peer());
                            let mut remote = 0;
                            peerlb_last_error_remote_code(&mut remote);
                            // Taken or refused: finishing it again is refused either way,
                            // never a double free.
                            checked(peerlb_choice_finish(
                                &mut choice,
                                PEERLB_OUTCOME_CANCELLED,
                                -1,
                            ));
                            break;
                        }
                    }
                    let mut attempts = 0;
                    checked(peerlb_retry_attempts(retry, &mut attempts));
                    peerlb_retry_free(retry);
                }
                if made {
                    let mut balance = 0;
                    checked(peerlb_retry_budget_balance(budget, &mut balance));
                    peerlb_retry_budget_free(budget);
                }
                if !clock.is_null() {
                    checked(peerlb_manual_clock_advance_ms(
                        clock,
                        u64::from(script.u32()),
                    ));
                    peerlb_manual_clock_free(clock);
                }
            }
            21 => {
                // A list on a manual clock with the script's ejection, failures, and time
                // moved by arbitrary amounts (a u64's worth at most).
                let mut clock = ptr::null_mut();
                assert_eq!(
                    peerlb_manual_clock_new(&mut clock),
                    peerlb_status::PEERLB_OK
                );
                let mut opts = ptr::null_mut();
                assert_eq!(peerlb_list_options_new(&mut opts), peerlb_status::PEERLB_OK);
                checked(peerlb_list_options_set_manual_clock(opts, clock));
                checked(peerlb_list_options_set_seed(opts, u64::from(script.u32())));
                checked(peerlb_list_options_set_shuffle(
                    opts,
                    script.byte() & 1 == 1,
                ));
                let ejection = script.cstring();
                checked(peerlb_list_options_set_ejection(
                    opts,
                    ejection.as_ptr().cast(),
                ));
                let mut timed = ptr::null_mut();
                let made = checked(peerlb_list_new(opts, ptr::null(), &mut timed));
                peerlb_list_options_free(opts);
                if made == peerlb_status::PEERLB_OK {
                    let ids = [&b"t1:1"[..], b"t2:1"];
                    let adds: Vec<peerlb_peer_spec> = ids
                        .iter()
                        .map(|id| peerlb_peer_spec {
                            id: id.as_ptr().cast(),
                            id_len: id.len(),
                            weight: 1,
                        })
                        .collect();
                    checked(peerlb_list_update(timed, adds.as_ptr(), 2, ptr::null(), 0));
                    checked(peerlb_list_start(timed));
                    for _ in 0..script.byte() % 8 {
                        let request = no_wait(&[], true);
                        let mut choice = std::mem::zeroed::<peerlb_choice>();
                        if checked(peerlb_list_choose(timed, &request, &mut choice))
                            == peerlb_status::PEERLB_OK
                        {
                            checked(peerlb_choice_finish(
                                &mut choice,
                                u32::from(script.byte() % 4),
                                -1,
                            ));
                        }
                        let step = match script.byte() % 3 {
                            0 => u64::from(script.byte()),
                            1 => u64::from(script.u32()),
                            _ => u64::MAX,
                        };
                        checked(peerlb_manual_clock_advance_ms(clock, step));
                        let mut elapsed = 0;
                        checked(peerlb_manual_clock_elapsed_ms(clock, &mut elapsed));
                    }
                    let mut s = ptr::null_mut();
                    if checked(peerlb_list_introspect(timed, &mut s)) == peerlb_status::PEERLB_OK {
                        json(s);
                    }
                    peerlb_list_free(timed);
                }
                peerlb_manual_clock_free(clock);
            }
            22 => {
                // Made and freed, never started: no connection is attempted.
                let endpoints = script.cstring();
                let prefix = script.cstring();
                let mut updater = ptr::null_mut();
                if checked(peerlb_updater_bind_etcd(
                    list,
                    if script.byte() == 0xff {
                        ptr::null()
                    } else {
                        endpoints.as_ptr().cast()
                    },
                    if script.byte() == 0xff {
                        ptr::null()
                    } else {
                        prefix.as_ptr().cast()
                    },
                    i64::from(script.u32() as i32),
                    i64::from(script.u32() as i32),
                    &mut updater,
                )) == peerlb_status::PEERLB_OK
                {
                    peerlb_updater_free(updater);
                }
            }
            _ => {
                let mut s = ptr::null_mut();
                if checked(peerlb_list_peers(list, &mut s)) == peerlb_status::PEERLB_OK {
                    json(s);
                }
                let (mut a, mut u, mut n) = (0, 0, 0);
                checked(peerlb_list_counts(list, &mut a, &mut u, &mut n));
                let mut running = false;
                checked(peerlb_list_is_running(list, &mut running));
                let mut capacity = 0;
                checked(peerlb_list_capacity(list, &mut capacity));
                let _ = CStr::from_ptr(peerlb_last_error_peer());
                let mut remote = 0;
                peerlb_last_error_remote_code(&mut remote);
                let _ = CStr::from_ptr(peerlb_version());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script(data);
    // SAFETY: every pointer handed to the library below is valid for what it is declared
    // as (or NULL on purpose), and every handle is freed once.
    unsafe {
        let mut list = new_list(&mut script);
        let mut calls = 0;
        while !script.0.is_empty() && calls < 64 {
            call(&mut list, &mut script);
            calls += 1;
        }
        // Still usable: it answers, and its introspection is valid JSON.
        let mut s = ptr::null_mut();
        assert_eq!(
            peerlb_list_introspect(list, &mut s),
            peerlb_status::PEERLB_OK
        );
        json(s);
        let mut len = 0;
        assert_eq!(peerlb_list_len(list, &mut len), peerlb_status::PEERLB_OK);
        let id = b"peerlb-fuzz-check:1";
        let add = peerlb_peer_spec {
            id: id.as_ptr().cast(),
            id_len: id.len(),
            weight: 1,
        };
        let _ = peerlb_list_update(list, &add, 1, ptr::null(), 0);
        let mut after = 0;
        assert_eq!(peerlb_list_len(list, &mut after), peerlb_status::PEERLB_OK);
        assert!(after >= len, "an addition shrank the list");
        free_list(list);
    }
});
