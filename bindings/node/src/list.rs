//! `NativeList`: the core `PeerList` as a napi-rs class. The public `PeerList` of
//! `index.js` extends it (adding the hot path, `Choice` objects, events and retries), so
//! the methods here are the public ones: `update`, `start`, `stop`, their async forms,
//! admin, introspection.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Object, Unknown};
use napi::{sys, Env, JsValue, ValueType};
use napi_derive::napi;
use peerlb::admin::AdminOp;

use crate::convert::{self, PeerSpecs, Strings};
use crate::events::JsEvents;
use crate::list_options::PeerListOptions;
use crate::offload::{Introspection, Offload, Work};
use crate::registry::{self, Entry};
use crate::transport::JsTransport;
use crate::{guard, js};

/// Changes for `update(changes)` / `updateAsync(changes)`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct UpdateOptions {
    /// Peers to add: ids, or `{id, weight, zone, priority}` (weight: a whole number,
    /// default 1; zone: a string, default none; priority: a whole number, 0 the highest
    /// and the default).
    #[napi(
        ts_type = "ReadonlyArray<string | { id: string; weight?: number; zone?: string | null; priority?: number }> | null"
    )]
    pub add: Option<PeerSpecs>,
    /// Ids of peers to remove (removals are applied first).
    #[napi(ts_type = "ReadonlyArray<string> | null")]
    pub remove: Option<Strings>,
}

/// The native peer list; use `PeerList` (which extends it).
#[napi]
pub struct NativeList {
    id: u32,
    entry: Rc<Entry>,
    /// A JS transport, held weakly (the wrapper `PeerList` holds the object).
    transport: Option<JsTransport>,
    /// The core subscription feeding the wrapper's event dispatcher (see `listen`).
    subscription: RefCell<Option<peerlb::Subscription>>,
    events: RefCell<Option<Arc<JsEvents>>>,
    /// Where session events go (see `session.rs`), and their core subscription.
    session_events: crate::session::SessionEvents,
    session_subscription: RefCell<Option<peerlb::Subscription>>,
}

impl Drop for NativeList {
    fn drop(&mut self) {
        registry::unregister(self.id);
    }
}

impl NativeList {
    pub(crate) fn core(&self) -> &peerlb::PeerList {
        &self.entry.list
    }

    pub(crate) fn offload(&self, work: Work) -> AsyncTask<Offload> {
        AsyncTask::new(Offload::new(
            self.core().clone(),
            work,
            self.events.borrow().clone(),
        ))
    }

    /// Where this list's session events go.
    pub(crate) fn session_events(&self) -> crate::session::SessionEvents {
        self.session_events.clone()
    }

    /// Keeps the core subscription of the session listener (dropping a previous one).
    pub(crate) fn keep_session_subscription(&self, subscription: peerlb::Subscription) {
        let _previous = self.session_subscription.replace(Some(subscription));
    }

    pub(crate) fn admin_op(&self, env: &Env, op: AdminOp, id: Unknown) -> napi::Result<String> {
        let what = format!("{op}(id): id");
        let id: String = unsafe { convert::arg(env.raw(), id.raw(), &what)? };
        guard::call(env, || self.core().admin(op, &id)).map(|r| r.as_str().to_owned())
    }
}

/// The changes of an `update` call, converted.
fn changes(env: &Env, changes: Option<Unknown>, what: &str) -> napi::Result<(PeerSpecs, Strings)> {
    let raw = changes.map_or(std::ptr::null_mut(), |c| c.raw());
    let c: UpdateOptions = unsafe { convert::options(env.raw(), raw, what)? };
    Ok((c.add.unwrap_or_default(), c.remove.unwrap_or_default()))
}

#[napi]
impl NativeList {
    /// A list; see `PeerListOptions` (anything not given takes the core's default).
    #[napi(constructor, ts_args_type = "options?: PeerListOptions")]
    pub fn new(env: Env, options: Option<Unknown>) -> napi::Result<Self> {
        let raw = options.map_or(std::ptr::null_mut(), |o| o.raw());
        let o: PeerListOptions =
            unsafe { convert::options(env.raw(), raw, "new PeerList(options)")? };
        let (opts, transport) = o.into_core(&env)?;
        let list = guard::call(&env, || peerlb::PeerList::new(opts))?;
        let (id, entry) = registry::register(list);
        Ok(NativeList {
            id,
            entry,
            transport,
            subscription: RefCell::new(None),
            events: RefCell::new(None),
            session_events: Default::default(),
            session_subscription: RefCell::new(None),
        })
    }

    /// The handle of this list for the hot-path functions (`choose0`, `choose`, `finish`).
    #[napi(getter, skip_typescript)]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The JS transport object (held weakly here; the wrapper holds it), or null.
    #[napi(skip_typescript)]
    pub fn transport_object(&self, env: Env) -> Option<sys::napi_value> {
        self.transport
            .as_ref()
            .and_then(|t| unsafe { t.object(env.raw()) })
    }

    /// Whether the list is running.
    #[napi(getter)]
    pub fn running(&self, env: Env) -> napi::Result<bool> {
        guard::call(&env, || Ok(self.core().is_running()))
    }

    /// The strategy's full spec, options included (`'hash-ring?bounded=1.25'`; defaults
    /// are left out).
    #[napi(getter)]
    pub fn strategy(&self) -> String {
        self.core().strategy_name().to_owned()
    }

    /// The list's name (`name` option, or `list-N`): its `list` label in metrics and its
    /// path on the admin endpoint.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.core().name().to_owned()
    }

    /// The list's metrics in the Prometheus text format ('' when made with `metrics: false`).
    #[napi]
    pub fn metrics(&self, env: Env) -> napi::Result<String> {
        guard::call(&env, || Ok(self.core().metrics()))
    }

    /// Adds and removes peers (removals first). Everything that can be applied is; the
    /// failures are thrown together (`err.errors` lists them when there are several).
    /// Runs on the calling thread: for very large changes (tens of thousands of peers)
    /// prefer `updateAsync` (`PeerList`).
    #[napi(ts_args_type = "changes: UpdateOptions")]
    pub fn update(&self, env: Env, changes: Option<Unknown>) -> napi::Result<()> {
        let (add, remove) = self::changes(&env, changes, "update(changes)")?;
        guard::call(&env, || self.core().update(add.0, remove.0))
    }

    /// Starts the list: retains every peer (PEERLB_ALREADY_STARTED when running).
    #[napi]
    pub fn start(&self, env: Env) -> napi::Result<()> {
        guard::call(&env, || self.core().start())
    }

    /// `start` on a library thread.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn start_async(&self) -> AsyncTask<Offload> {
        self.offload(Work::Start)
    }

    /// Stops the list: releases every peer; waiting chooses fail with PEERLB_NOT_STARTED
    /// (PEERLB_NOT_STARTED when not running).
    #[napi]
    pub fn stop(&self, env: Env) -> napi::Result<()> {
        guard::call(&env, || self.core().stop())
    }

    /// `stop` on a library thread.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop_async(&self) -> AsyncTask<Offload> {
        self.offload(Work::Stop)
    }

    /// The list's introspection as JSON.
    #[napi(skip_typescript)]
    pub fn introspect_json(&self, env: Env) -> napi::Result<String> {
        guard::call(&env, || Ok(self.core().introspect().to_json()))
    }

    /// The introspection made on a library thread, as JSON parts to take one by one: the
    /// list without its peers, then the peers in chunks (arrays) that parse in a few
    /// milliseconds each.
    #[napi(skip_typescript)]
    pub fn introspect_parts(&self) -> AsyncTask<Introspection> {
        AsyncTask::new(Introspection::new(self.core().clone()))
    }

    /// Admin: no new requests go to `id` (in-flight ones finish); it stays disabled across
    /// updates until `enable`. Returns 'success' or 'no-action-required'; a failed operation
    /// throws (PEERLB_PEER_NOT_IN_LIST, PEERLB_INVALID_ARGUMENT). See also `admin()`.
    #[napi(
        ts_args_type = "id: string",
        ts_return_type = "'success' | 'no-action-required'"
    )]
    pub fn disable(&self, env: Env, id: Unknown) -> napi::Result<String> {
        self.admin_op(&env, AdminOp::Disable, id)
    }

    /// Admin: undoes `disable`. Returns 'success' or 'no-action-required'; throws when failed.
    #[napi(
        ts_args_type = "id: string",
        ts_return_type = "'success' | 'no-action-required'"
    )]
    pub fn enable(&self, env: Env, id: Unknown) -> napi::Result<String> {
        self.admin_op(&env, AdminOp::Enable, id)
    }

    /// Admin: clears the peer's ejection and failure history. Returns 'success' or
    /// 'no-action-required'; throws when failed.
    #[napi(
        ts_args_type = "id: string",
        ts_return_type = "'success' | 'no-action-required'"
    )]
    pub fn reset(&self, env: Env, id: Unknown) -> napi::Result<String> {
        self.admin_op(&env, AdminOp::Reset, id)
    }

    /// Admin: removes the peer and forgets its admin state. Returns 'success'; throws when
    /// failed.
    #[napi(
        ts_args_type = "id: string",
        ts_return_type = "'success' | 'no-action-required'"
    )]
    pub fn delete(&self, env: Env, id: Unknown) -> napi::Result<String> {
        self.admin_op(&env, AdminOp::Delete, id)
    }

    /// Admin by name (`'disable'`, `'enable'`, `'reset'`, `'delete'`, `'failover'`), not
    /// throwing for a failed operation: `{status: 'success' | 'no-action-required', result}`
    /// or `{status: 'failed', result, code, message, error}`, where `result` is the
    /// balancer's number (1 success, 3 no action required, 4 failed; an unknown action is
    /// failed with PEERLB_INVALID_ARGUMENT). Only wrong argument types throw (TypeError).
    #[napi(
        ts_args_type = "action: 'disable' | 'enable' | 'reset' | 'delete' | 'failover', id: string",
        ts_return_type = "{ status: 'success'; result: 1 } | { status: 'no-action-required'; result: 3 } | { status: 'failed'; result: 4; code: string; message: string; error: Error }"
    )]
    pub fn admin(&self, env: Env, action: Unknown, id: Unknown) -> napi::Result<Object<'_>> {
        let raw = env.raw();
        let action: String =
            unsafe { convert::arg(raw, action.raw(), "admin(action, id): action")? };
        let id: String = unsafe { convert::arg(raw, id.raw(), "admin(action, id): id")? };
        let result = guard::call(&env, || {
            Ok(action
                .parse::<AdminOp>()
                .and_then(|op| self.core().admin(op, &id)))
        })?;
        let mut out = Object::new(&env)?;
        out.set("result", peerlb::admin::result_number(&result))?;
        match result {
            Ok(r) => out.set("status", r.as_str())?,
            Err(e) => unsafe {
                out.set("status", "failed")?;
                out.set("code", js::node_code(e.code()))?;
                out.set("message", e.to_string())?;
                let error = js::error_value(raw, &e);
                napi::check_status!(sys::napi_set_named_property(
                    raw,
                    out.raw(),
                    c"error".as_ptr(),
                    error
                ))?;
            },
        }
        Ok(out)
    }

    /// Every backend with its admin and ejection state, as JSON (`introspect().peers`).
    #[napi(skip_typescript)]
    pub fn list_backends_json(&self, env: Env) -> napi::Result<String> {
        guard::call(&env, || {
            serde_json::to_string(&self.core().list_backends())
                .map_err(|e| peerlb::Error::Internal(e.to_string()))
        })
    }

    /// Sends the list's peer events to `dispatcher(kind, peer, detail)` (replacing any
    /// previous dispatcher). It is held weakly: the wrapper keeps it alive.
    #[napi(skip_typescript)]
    pub fn listen(&self, env: Env, dispatcher: Unknown) -> napi::Result<()> {
        if dispatcher.get_type()? != ValueType::Function {
            return Err(js::type_error(
                &env,
                "listen(dispatcher): dispatcher must be a function",
            ));
        }
        let events = unsafe { JsEvents::new(env.raw(), dispatcher.raw())? };
        let e = events.clone();
        let subscription = self.core().subscribe(move |ev| e.on_event(ev));
        *self.events.borrow_mut() = Some(events);
        // Dropping the previous subscription (if any) unsubscribes it.
        let _previous = self.subscription.replace(Some(subscription));
        Ok(())
    }

    /// The peer id with index `index` (from a token), or null.
    #[napi(skip_typescript)]
    pub fn peer_name(&self, index: u32) -> Option<String> {
        self.entry
            .table
            .borrow()
            .peer_name(index)
            .map(|p| p.to_string())
    }

    /// The peer of the pending choice of `token`, or null.
    #[napi(skip_typescript)]
    pub fn peer_of(&self, token: f64) -> Option<String> {
        self.entry
            .table
            .borrow()
            .peer_of(token)
            .map(|p| p.to_string())
    }
}
