//! The process-wide registry of lists, by name: what [`crate::metrics::gather`] and the
//! admin endpoint ([`crate::admin_http`]) see.
//!
//! Every [`PeerList`] is registered when it is made (weakly: the registry never keeps a list
//! alive) and leaves when it is dropped. A list is found by its name
//! ([`ListOptions::name`](crate::ListOptions::name), or `list-N` when it has none).
//!
//! Names should be unique. When several live lists share one, the one made **last** is the
//! one the registry shows under that name (in [`lists`], [`find`], the process-wide
//! metrics and the admin endpoint); the older ones are hidden until it is dropped. That
//! fits the usual reason two lists share a name, a new list built to replace an old one
//! that is still draining; each list's own [`PeerList::metrics`] is always its own.
//!
//! ```
//! use peerlb::{registry, ListOptions, PeerList};
//! let old = PeerList::new(ListOptions::default().name("registry-doc")).unwrap();
//! let new = PeerList::new(ListOptions::default().name("registry-doc")).unwrap();
//! new.update(["a:1"], None::<&str>).unwrap();
//! assert_eq!(registry::find("registry-doc").unwrap().len(), 1); // the newer one
//! drop(new);
//! assert_eq!(registry::find("registry-doc").unwrap().len(), 0); // the older one again
//! # drop(old);
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::error::{Error, Result};
use crate::list::{ListShared, PeerList};

/// The longest list name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

struct Entry {
    name: Arc<str>,
    list: Weak<ListShared>,
}

fn entries() -> MutexGuard<'static, Vec<Entry>> {
    static ENTRIES: OnceLock<Mutex<Vec<Entry>>> = OnceLock::new();
    ENTRIES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Checks a list name: 1..=128 bytes of ASCII letters, digits, `_`, `-`, `.`, `:`.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "list name must be 1..={MAX_NAME_LEN} bytes long, got {} bytes",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(Error::InvalidArgument(format!(
            "list name {name:?} has {c:?}; names take ASCII letters, digits, '_', '-', '.' and ':'"
        )));
    }
    Ok(())
}

/// The name of a list made without one: `list-1`, `list-2`, ...
pub(crate) fn default_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("list-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Registers a new list.
pub(crate) fn register(name: Arc<str>, list: Weak<ListShared>) {
    let mut entries = entries();
    entries.retain(|e| e.list.strong_count() > 0);
    entries.push(Entry { name, list });
}

/// Every live list the registry shows (the newest of each name), oldest first.
pub fn lists() -> Vec<PeerList> {
    let alive: Vec<(Arc<str>, Arc<ListShared>)> = {
        let mut entries = entries();
        entries.retain(|e| e.list.strong_count() > 0);
        entries
            .iter()
            .filter_map(|e| e.list.upgrade().map(|l| (e.name.clone(), l)))
            .collect()
    };
    // Newest of each name: walk from the newest, keep the first of each name.
    let mut seen = HashSet::new();
    let mut shown: Vec<PeerList> = alive
        .into_iter()
        .rev()
        .filter(|(name, _)| seen.insert(name.clone()))
        .map(|(_, shared)| PeerList::from_shared(shared))
        .collect();
    shown.reverse();
    shown
}

/// The live list named `name` (the newest, if several share it).
pub fn find(name: &str) -> Option<PeerList> {
    let entries = entries();
    entries
        .iter()
        .rev()
        .filter(|e| &*e.name == name)
        .find_map(|e| e.list.upgrade())
        .map(PeerList::from_shared)
}
