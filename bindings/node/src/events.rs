//! Peer events for JS: the core calls a subscriber closure (outside its locks, one event at
//! a time, in order) on whatever thread caused the event. This module queues each event
//! for the list's JS dispatcher (a function of the wrapper `PeerList`, which calls the
//! user's subscribers) and delivers the queue:
//!
//! * at once, when the event comes from a binding call on the JS thread (`update`,
//!   `start`, `stop`, admin calls, `finish`, `clock.advance`, a JS transport's
//!   `setStatus`): the subscribers have run when that call returns;
//! * through an unref'd thread-safe function otherwise (timers on the real clock,
//!   `tcp-probe` reports, updaters): on the JS thread, soon, never keeping the process alive.
//!
//! One queue per list, drained only on the JS thread, keeps the order in both cases: a
//! synchronous delivery first delivers whatever a library thread queued before it.
//!
//! The dispatcher is held by a *weak* reference: it lives as long as the wrapper
//! `PeerList` that owns it, so a subscriber that refers to its list does not keep the list
//! alive forever.

use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};

use napi::sys;
use peerlb::PeerEvent;

use crate::js;
use crate::transport::{in_scope, referenced_tsfn, EnvScope, TsfnState};

/// An event the dispatcher is called with: peer events as `(kind, peer, detail)`, session
/// events as `(kind, session, peer, reason)`.
pub trait Dispatched: Clone + Send + 'static {
    /// The dispatcher's arguments for this event.
    ///
    /// # Safety
    /// `env` must be the env of the current call, on its JS thread.
    unsafe fn args(&self, env: sys::napi_env) -> Vec<sys::napi_value>;
}

impl Dispatched for PeerEvent {
    unsafe fn args(&self, env: sys::napi_env) -> Vec<sys::napi_value> {
        vec![
            js::string(env, self.kind.as_str()),
            js::string(env, self.peer.as_str()),
            js::string(env, &self.detail),
        ]
    }
}

/// Delivers one list's events (of type `E`) to its JS dispatcher.
pub struct JsEvents<E: Dispatched = PeerEvent> {
    env: usize,
    owner: ThreadId,
    /// A weak `napi_ref` (count 0) to the dispatcher function.
    dispatcher: usize,
    tsfn: Arc<TsfnState>,
    queue: Mutex<VecDeque<E>>,
    /// A drain job is queued on the thread-safe function.
    posted: AtomicBool,
    /// A drain runs (on the JS thread); a nested one leaves the queue to it.
    draining: AtomicBool,
}

impl<E: Dispatched> JsEvents<E> {
    /// # Safety
    /// Call on the JS thread with the env of the current call and a live function.
    pub(crate) unsafe fn new(
        env: sys::napi_env,
        dispatcher: sys::napi_value,
    ) -> napi::Result<Arc<JsEvents<E>>> {
        let (reference, tsfn) = referenced_tsfn(env, dispatcher, "peerlb-events", "events")?;
        // Weak: the wrapper PeerList keeps its dispatcher alive, not the addon.
        let mut count = 0;
        sys::napi_reference_unref(env, reference, &mut count);
        Ok(Arc::new(JsEvents {
            env: env as usize,
            owner: thread::current().id(),
            dispatcher: reference as usize,
            tsfn,
            queue: Mutex::new(VecDeque::new()),
            posted: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<E>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The core's subscriber callback.
    pub(crate) fn on_event(self: &Arc<Self>, event: &E) {
        self.lock().push_back(event.clone());
        let env = self.env as sys::napi_env;
        if thread::current().id() == self.owner && in_scope(env) {
            unsafe { self.drain(env) };
            return;
        }
        if self.posted.swap(true, Ordering::AcqRel) {
            return; // a queued drain job will deliver it
        }
        let me = self.clone();
        let posted = self.tsfn.post(Box::new(move |env| {
            me.posted.store(false, Ordering::Release);
            match env {
                Some(env) => {
                    let _scope = EnvScope::enter(env);
                    unsafe { me.drain(env) };
                }
                None => me.lock().clear(),
            }
        }));
        if !posted {
            // The JS environment is gone: nobody is left to tell.
            self.posted.store(false, Ordering::Release);
            self.lock().clear();
        }
    }

    /// Delivers what library threads queued, now (an async form's work is done: its
    /// events reach subscribers before its Promise settles).
    ///
    /// # Safety
    /// On the JS thread, with `env` this object's env, in a context that may call JS.
    pub(crate) unsafe fn deliver(&self, env: sys::napi_env) {
        if thread::current().id() == self.owner && env as usize == self.env {
            let _scope = EnvScope::enter(env);
            self.drain(env);
        }
    }

    /// Calls the dispatcher for every queued event, in order.
    ///
    /// # Safety
    /// On the JS thread, with `env` this object's env, in a context that may call JS.
    unsafe fn drain(&self, env: sys::napi_env) {
        if self.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        loop {
            let next = self.lock().pop_front();
            let Some(event) = next else { break };
            if !self.call(env, &event) {
                self.lock().clear();
                break;
            }
        }
        self.draining.store(false, Ordering::Release);
    }

    /// Calls the dispatcher with one event; false if the dispatcher is gone.
    unsafe fn call(&self, env: sys::napi_env, event: &E) -> bool {
        let mut func = ptr::null_mut();
        sys::napi_get_reference_value(env, self.dispatcher as sys::napi_ref, &mut func);
        if func.is_null() {
            return false;
        }
        let mut undefined = ptr::null_mut();
        sys::napi_get_undefined(env, &mut undefined);
        let args = event.args(env);
        let mut ret = ptr::null_mut();
        let status =
            sys::napi_call_function(env, undefined, func, args.len(), args.as_ptr(), &mut ret);
        if status != sys::Status::napi_ok {
            // The dispatcher catches what subscribers throw; anything left (e.g. a stack
            // overflow) must not escape into an unrelated call or crash the process.
            let _ = js::take_exception(env);
        }
        true
    }
}

impl<E: Dispatched> Drop for JsEvents<E> {
    fn drop(&mut self) {
        let state = self.tsfn.clone();
        if !state.is_alive() {
            return; // the environment is torn down; Node frees the reference itself
        }
        let reference = self.dispatcher;
        if thread::current().id() == self.owner {
            unsafe { sys::napi_delete_reference(self.env as sys::napi_env, reference as _) };
        } else {
            state.post(Box::new(move |env| {
                if let Some(env) = env {
                    unsafe { sys::napi_delete_reference(env, reference as _) };
                }
            }));
        }
        let mut guard = state.handle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = guard.take() {
            unsafe {
                sys::napi_release_threadsafe_function(
                    handle as sys::napi_threadsafe_function,
                    sys::ThreadsafeFunctionReleaseMode::release,
                )
            };
        }
    }
}
