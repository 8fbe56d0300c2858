//! This JS thread's lists by a small integer id, for the hot-path functions.
//!
//! `choose0`, `choose`, `finish` are plain N-API functions taking the list's id: a napi-rs
//! class method pays for unwrapping and borrow tracking of `this` (~200 ns), a thread-local
//! lookup costs a few. Ids are reused once a list is gone; each [`Entry`] also carries a
//! serial that is never reused, for answers that arrive later (an async choose).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::table::Table;

/// One list as the hot-path functions see it.
pub struct Entry {
    /// Unique per list ever made (ids are reused).
    pub serial: u64,
    pub list: peerlb::PeerList,
    pub table: RefCell<Table>,
}

struct Registry {
    entries: Vec<Option<Rc<Entry>>>,
    free: Vec<u32>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = const {
        RefCell::new(Registry {
            entries: Vec::new(),
            free: Vec::new(),
        })
    };
}

/// Registers a list; returns its id and its entry.
pub fn register(list: peerlb::PeerList) -> (u32, Rc<Entry>) {
    static SERIAL: AtomicU64 = AtomicU64::new(1);
    let entry = Rc::new(Entry {
        serial: SERIAL.fetch_add(1, Ordering::Relaxed),
        list,
        table: RefCell::default(),
    });
    let id = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        match r.free.pop() {
            Some(id) => {
                r.entries[id as usize] = Some(entry.clone());
                id
            }
            None => {
                r.entries.push(Some(entry.clone()));
                (r.entries.len() - 1) as u32
            }
        }
    });
    (id, entry)
}

/// Forgets list `id` (its entry lives on while others hold it).
pub fn unregister(id: u32) {
    let taken = REGISTRY.with(|r| {
        let mut r = r.try_borrow_mut().ok()?;
        let taken = r.entries.get_mut(id as usize)?.take();
        if taken.is_some() {
            r.free.push(id);
        }
        taken
    });
    // Dropped outside the registry's borrow: dropping a list may reach its transport.
    drop(taken);
}

/// Runs `f` with the entry of list `id` (None if there is no such list on this thread).
/// `f` must not call JS (nothing may re-enter the registry meanwhile).
#[inline]
pub fn with_entry<R>(id: u32, f: impl FnOnce(&Entry) -> R) -> Option<R> {
    REGISTRY.with(|r| {
        let r = r.borrow();
        let e = r.entries.get(id as usize)?.as_ref()?;
        Some(f(e))
    })
}

/// The error for an id that names no list on this thread.
pub fn no_such_list(id: u32) -> peerlb::Error {
    peerlb::Error::InvalidArgument(format!("no peer list with handle {id} on this thread"))
}
