//! The async forms (`updateAsync`, `startAsync`, `stopAsync`, `introspectAsync`): the
//! core call runs on a libuv worker thread (napi async work, which keeps the process alive
//! while it runs), so a call that is O(peers) does not block the event loop. A JS
//! transport is still called on the JS thread, one call at a time through the event loop
//! (see `transport.rs`). When the work is done, its events are delivered and then its
//! Promise settles, on the JS thread.

use std::sync::Arc;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, Task};
use napi_derive::napi;
use peerlb::PeerSpec;

use crate::events::JsEvents;
use crate::guard::caught;
use crate::js;

/// What an async form does.
pub enum Work {
    /// `update(additions, removals)`.
    Update(Vec<PeerSpec>, Vec<String>),
    /// `start()`.
    Start,
    /// `stop()`.
    Stop,
}

/// One async form's work.
pub struct Offload {
    list: peerlb::PeerList,
    work: Option<Work>,
    events: Option<Arc<JsEvents>>,
}

impl Offload {
    /// The work for `list`; `events`, if the list has JS subscribers, is delivered before
    /// the Promise settles.
    pub fn new(list: peerlb::PeerList, work: Work, events: Option<Arc<JsEvents>>) -> Offload {
        Offload {
            list,
            work: Some(work),
            events,
        }
    }
}

/// Rejects with the core error as the package's `Error` (with its `code`).
fn reject(env: &Env, e: &peerlb::Error) -> napi::Error {
    let value = unsafe { js::error_value(env.raw(), e) };
    napi::Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
}

impl Task for Offload {
    type Output = peerlb::Result<()>;
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let list = &self.list;
        Ok(match self.work.take() {
            Some(Work::Update(add, remove)) => caught(|| list.update(add, remove)),
            Some(Work::Start) => caught(|| list.start()),
            Some(Work::Stop) => caught(|| list.stop()),
            None => Ok(()),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<()> {
        if let Some(events) = &self.events {
            unsafe { events.deliver(env.raw()) };
        }
        output.map_err(|e| reject(&env, &e))
    }
}

/// Peers per JSON chunk of [`Introspection`]: one or two milliseconds of `JSON.parse`.
const CHUNK: usize = 1000;

/// `introspectAsync`'s work: the snapshot and its JSON, made off the JS thread.
pub struct Introspection {
    list: peerlb::PeerList,
}

impl Introspection {
    /// The introspection of `list`.
    pub fn new(list: peerlb::PeerList) -> Introspection {
        Introspection { list }
    }
}

/// The JSON parts of an introspection, handed to JS one at a time (making a JS string of
/// a part costs time on the JS thread too).
#[napi]
pub struct IntrospectionParts {
    parts: std::collections::VecDeque<String>,
}

#[napi]
impl IntrospectionParts {
    /// The next part, or null.
    #[napi(ts_return_type = "string | null")]
    pub fn next(&mut self, env: Env) -> napi::Result<Option<sys::napi_value>> {
        let Some(part) = self.parts.pop_front() else {
            return Ok(None);
        };
        let mut out = std::ptr::null_mut();
        // ASCII (the usual case) is copied as is; anything else is transcoded from UTF-8.
        let status = unsafe {
            if part.is_ascii() {
                sys::napi_create_string_latin1(
                    env.raw(),
                    part.as_ptr().cast(),
                    part.len() as isize,
                    &mut out,
                )
            } else {
                sys::napi_create_string_utf8(
                    env.raw(),
                    part.as_ptr().cast(),
                    part.len() as isize,
                    &mut out,
                )
            }
        };
        napi::check_status!(status)?;
        Ok(Some(out))
    }
}

impl Task for Introspection {
    type Output = peerlb::Result<Vec<String>>;
    type JsValue = IntrospectionParts;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let list = &self.list;
        Ok(caught(|| {
            let mut info = list.introspect();
            let peers = std::mem::take(&mut info.peers);
            let mut parts = Vec::with_capacity(1 + peers.len().div_ceil(CHUNK));
            parts.push(info.to_json());
            for chunk in peers.chunks(CHUNK) {
                parts.push(
                    serde_json::to_string(chunk)
                        .map_err(|e| peerlb::Error::Internal(e.to_string()))?,
                );
            }
            Ok(parts)
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<IntrospectionParts> {
        output
            .map(|parts| IntrospectionParts {
                parts: parts.into(),
            })
            .map_err(|e| reject(&env, &e))
    }
}
