//! Peer events: what happened to which peer, delivered to subscribers outside every lock.
//!
//! A list records an event while it changes its state (so events keep the order of the
//! changes), and delivers queued events after it has let go of its lock. One thread
//! delivers at a time: a thread that finds another one delivering leaves its events to it
//! (so an event may arrive on that thread after the causing call returned), a subscriber
//! never runs twice at once, sees events in order, and may call back into the list (its
//! events are delivered after it returns). Events raised on the library runtime's async
//! threads (probe reports, ejection timers) are delivered from its blocking pool, so a
//! slow subscriber never stalls the library's timers. A subscriber that panics is skipped
//! for that event; the others still get it.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use peerlb::{ListOptions, PeerList};
//! use peerlb::events::EventKind;
//!
//! let list = PeerList::new(ListOptions::default()).unwrap();
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let log = seen.clone();
//! let _sub = list.subscribe(move |e| log.lock().unwrap().push(e.to_string()));
//! list.update(["a:1"], None::<&str>).unwrap();
//! list.start().unwrap();
//! assert_eq!(*seen.lock().unwrap(), ["added a:1", "available a:1"]);
//! # let _ = EventKind::Added;
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::sync::{AtomicUsize, Mutex, MutexGuard, Ordering};

use crate::peer::PeerId;

/// What happened to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EventKind {
    /// It joined the list (`update` addition).
    Added = 1,
    /// It left the list (`update` removal or admin `delete`).
    Removed = 2,
    /// Its transport reported it available (also when the list starts and retains it); it
    /// is chosen unless an admin disabled it or it is ejected.
    Available = 3,
    /// Its transport reported it unavailable or connecting after it was available, or the
    /// list stopped.
    Unavailable = 4,
    /// Outlier detection took it out of rotation after consecutive failures.
    Ejected = 5,
    /// Its ejection time ran out (or an admin `reset` cleared it).
    Restored = 6,
    /// An admin disabled it: no new requests.
    Disabled = 7,
    /// An admin enabled it again.
    Enabled = 8,
}

impl EventKind {
    /// Every kind, in numeric order.
    pub const ALL: [EventKind; 8] = [
        EventKind::Added,
        EventKind::Removed,
        EventKind::Available,
        EventKind::Unavailable,
        EventKind::Ejected,
        EventKind::Restored,
        EventKind::Disabled,
        EventKind::Enabled,
    ];

    /// `"added"`, `"removed"`, `"available"`, `"unavailable"`, `"ejected"`, `"restored"`,
    /// `"disabled"` or `"enabled"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "added",
            EventKind::Removed => "removed",
            EventKind::Available => "available",
            EventKind::Unavailable => "unavailable",
            EventKind::Ejected => "ejected",
            EventKind::Restored => "restored",
            EventKind::Disabled => "disabled",
            EventKind::Enabled => "enabled",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event: a kind, the peer, and (for ejections) a detail such as the ejection time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEvent {
    /// What happened.
    pub kind: EventKind,
    /// To which peer.
    pub peer: PeerId,
    /// More about it, for people (e.g. `"5 consecutive failures; ejected for 30s"`), or
    /// empty.
    pub detail: String,
}

impl fmt::Display for PeerEvent {
    /// `"<kind> <peer>"`, the form conformance scenarios compare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.peer)
    }
}

/// A subscriber callback.
pub type EventCallback = Arc<dyn Fn(&PeerEvent) + Send + Sync>;

/// A subscriber callback for events of type `E` (peer events, session events).
pub(crate) type Callback<E> = Arc<dyn Fn(&E) + Send + Sync>;

/// What a [`Subscription`] needs of its bus, whatever the bus's event type.
trait Unsubscribe: Send + Sync {
    fn unsubscribe(&self, id: u64);
}

impl<E: Send + Sync + 'static> Unsubscribe for EventBus<E> {
    fn unsubscribe(&self, id: u64) {
        EventBus::unsubscribe(self, id);
    }
}

/// Keeps a subscription alive; dropping it (or [`Subscription::cancel`]) unsubscribes.
/// The same handle serves peer events ([`PeerList::subscribe`](crate::PeerList::subscribe))
/// and session events
/// ([`PeerList::subscribe_sessions`](crate::PeerList::subscribe_sessions)).
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    bus: std::sync::Weak<dyn Unsubscribe>,
    id: u64,
}

impl Subscription {
    /// Unsubscribes. Events already being delivered may still reach the callback once.
    pub fn cancel(self) {}

    /// Keeps the subscription for the life of the list (no handle to hold).
    pub fn forget(mut self) {
        self.bus = std::sync::Weak::<EventBus<PeerEvent>>::new();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.unsubscribe(self.id);
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subscription({})", self.id)
    }
}

/// A list's event queue and subscribers, for one type of event (a list has one bus for
/// peer events and one for session events).
pub(crate) struct EventBus<E = PeerEvent> {
    inner: Mutex<BusState<E>>,
    /// How many subscribers there are (read without the lock: a list records no events
    /// while nobody listens).
    subscribers: AtomicUsize,
}

impl<E> Default for EventBus<E> {
    fn default() -> Self {
        EventBus {
            inner: Mutex::new(BusState {
                subscribers: Vec::new(),
                next_id: 0,
                queue: VecDeque::new(),
                delivering: false,
            }),
            subscribers: AtomicUsize::new(0),
        }
    }
}

struct BusState<E> {
    subscribers: Vec<(u64, Callback<E>)>,
    next_id: u64,
    queue: VecDeque<E>,
    delivering: bool,
}

impl<E: Send + Sync + 'static> EventBus<E> {
    fn lock(&self) -> MutexGuard<'_, BusState<E>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a subscriber.
    pub(crate) fn subscribe(self: &Arc<Self>, callback: Callback<E>) -> Subscription {
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        state.subscribers.push((id, callback));
        self.subscribers
            .store(state.subscribers.len(), Ordering::Release);
        let bus: Arc<dyn Unsubscribe> = self.clone();
        Subscription {
            bus: Arc::downgrade(&bus),
            id,
        }
    }

    fn unsubscribe(&self, id: u64) {
        let removed = {
            let mut state = self.lock();
            let at = state.subscribers.iter().position(|(i, _)| *i == id);
            let removed = at.map(|i| state.subscribers.remove(i));
            self.subscribers
                .store(state.subscribers.len(), Ordering::Release);
            removed
        };
        // Dropped after the lock is released: the callback may own things whose drop runs
        // user code (another subscription, the last handle of a list).
        drop(removed);
    }

    /// Whether anyone listens (a change that finds nobody records no events). A subscriber
    /// added while a change is in progress hears from the next change on.
    pub(crate) fn is_recording(&self) -> bool {
        self.subscribers.load(Ordering::Acquire) > 0
    }

    /// Queues events; call while holding the list's lock so the order is the changes'.
    pub(crate) fn push(&self, events: impl IntoIterator<Item = E>) {
        let mut state = self.lock();
        if state.subscribers.is_empty() {
            return;
        }
        state.queue.extend(events);
    }

    /// Delivers queued events, unless another thread (or an outer frame of this one) is
    /// delivering already. Call with no lock held. On one of the library runtime's async
    /// workers (a probe's status report), delivery moves to its blocking pool so that a slow
    /// subscriber cannot stall the library's timers.
    pub(crate) fn deliver(self: &Arc<Self>) {
        if crate::runtime::on_worker_thread() {
            let bus = self.clone();
            crate::runtime::run_blocking(move || bus.deliver());
            return;
        }
        {
            let mut state = self.lock();
            if state.delivering || state.queue.is_empty() {
                return;
            }
            state.delivering = true;
        }
        loop {
            let (event, subscribers) = {
                let mut state = self.lock();
                match state.queue.pop_front() {
                    Some(e) => {
                        let subs: Vec<Callback<E>> =
                            state.subscribers.iter().map(|(_, s)| s.clone()).collect();
                        (e, subs)
                    }
                    None => {
                        state.delivering = false;
                        return;
                    }
                }
            };
            for subscriber in subscribers {
                let _ = catch_unwind(AssertUnwindSafe(|| subscriber(&event)));
                // The clone is dropped here, outside every lock.
                drop(subscriber);
            }
        }
    }
}
