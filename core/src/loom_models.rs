//! loom models of the lock-free pieces: every interleaving of a few threads (up to a bound
//! on preemptions) is run, and loom reports data races on the cells it tracks, orderings
//! that do not order, deadlocks and leaks.
//!
//! Built only with `--cfg peerlb_loom` (`make test-loom`, which runs them in release mode):
//!
//! | model | what it checks |
//! |---|---|
//! | `stripe_lock_*` | the stripe's one-CAS spin lock excludes: no two threads inside, no update lost |
//! | `packed_counts_*` | a peer's packed references + pending: the free comes after every other use, exactly once; pending is never seen below what is in flight; the C token round trip |
//! | `snapshot_*` | a chooser never drops the last reference to a replaced structure; the generation it reads is never newer than the structure it then loads; staged batches publish in stage order whichever thread publishes |
//! | `event_bus_*` | one deliverer at a time: a subscriber never runs twice at once, every event arrives exactly once and in order, none is stranded in the queue |
//!
//! Each prints how many interleavings it explored (`loom: <model>: N interleavings`).

use std::sync::atomic::{AtomicBool, AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Mutex;
use loom::thread;

use crate::events::{EventBus, EventKind, PeerEvent};
use crate::peer::{Peer, PeerId, PeerRef};
use crate::strategy::snapshot::{Published, Publisher};
use crate::strategy::stripes::StripeCell;

/// Preemptions per interleaving: enough to reach every bug loom's authors report in
/// practice (most need 2), small enough that `make test-loom` stays within its budget.
const PREEMPTION_BOUND: usize = 3;

/// Runs `model` under loom with the bound above and prints how many interleavings ran.
fn explore(name: &str, model: impl Fn() + Sync + Send + 'static) {
    explore_bounded(name, PREEMPTION_BOUND, model)
}

/// [`explore`] with another preemption bound (three threads that spin need a lower one).
fn explore_bounded(name: &str, bound: usize, model: impl Fn() + Sync + Send + 'static) {
    let runs = Arc::new(StdAtomicUsize::new(0));
    let counted = runs.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    // Waiters on the stripe lock add a branch per spin; three threads need more than
    // loom's default 1 000 branches per interleaving.
    builder.max_branches = 100_000;
    builder.check(move || {
        counted.fetch_add(1, StdOrdering::Relaxed);
        model();
    });
    println!(
        "loom: {name}: {} interleavings",
        runs.load(StdOrdering::Relaxed)
    );
}

fn peer(id: &str) -> PeerRef {
    Peer::detached(PeerId::new(id).unwrap(), 1)
}

// ---- the stripe lock -------------------------------------------------------------------

#[test]
fn stripe_lock_excludes_two_threads_twice_each() {
    explore("stripe_lock_excludes_two_threads_twice_each", || {
        let cell = loom::sync::Arc::new(StripeCell::new(0u32));
        let other = cell.clone();
        let t = thread::spawn(move || {
            other.with(|v| *v += 1);
            other.with(|v| *v += 10);
        });
        cell.with(|v| *v += 100);
        cell.with(|v| *v += 1000);
        t.join().unwrap();
        assert_eq!(cell.with(|v| *v), 1111);
    });
}

#[test]
fn stripe_lock_excludes_three_threads() {
    explore_bounded("stripe_lock_excludes_three_threads", 1, || {
        let cell = loom::sync::Arc::new(StripeCell::new(0u32));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let c = cell.clone();
                thread::spawn(move || c.with(|v| *v += 1))
            })
            .collect();
        cell.with(|v| *v += 100);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cell.with(|v| *v), 102);
    });
}

// ---- the packed reference + pending counter --------------------------------------------

#[test]
fn packed_counts_free_once_after_every_use() {
    explore("packed_counts_free_once_after_every_use", || {
        let id = PeerId::new("a").unwrap();
        let p = Peer::detached(id.clone(), 1);
        let (p1, p2) = (p.clone(), p.clone());
        let requester = thread::spawn(move || {
            let request = p1.start_request();
            drop(p1);
            // The request alone keeps the peer alive and counts as pending.
            assert!(request.peer().pending() >= 1);
            drop(request);
        });
        let cloner = thread::spawn(move || {
            let q = p2.clone();
            drop(p2);
            let _ = q.pending();
            drop(q);
        });
        drop(p);
        requester.join().unwrap();
        cloner.join().unwrap();
        // Every reference is gone: the peer (which held a clone of the id) was freed.
        assert_eq!(id.holders(), 1);
    });
}

#[test]
fn packed_counts_three_threads_free_once() {
    explore("packed_counts_three_threads_free_once", || {
        let id = PeerId::new("d").unwrap();
        let p = Peer::detached(id.clone(), 1);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let mine = p.clone();
                thread::spawn(move || {
                    let request = mine.start_request();
                    drop(mine);
                    let again = request.peer_ref();
                    drop(request);
                    drop(again);
                })
            })
            .collect();
        let request = p.start_request();
        drop(p);
        drop(request);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(id.holders(), 1);
    });
}

#[test]
fn packed_counts_pending_never_below_in_flight() {
    explore("packed_counts_pending_never_below_in_flight", || {
        let p = peer("b");
        let r1 = p.start_request();
        let p2 = p.clone();
        let t = thread::spawn(move || {
            let r2 = p2.start_request();
            let seen = p2.pending();
            assert!(
                (1..=2).contains(&seen),
                "pending {seen} with one request held here"
            );
            drop(r2);
            let seen = p2.pending();
            assert!(seen <= 1, "pending {seen} after finishing");
        });
        let seen = p.pending();
        assert!(
            (1..=2).contains(&seen),
            "pending {seen} with one request held here"
        );
        drop(r1);
        t.join().unwrap();
        assert_eq!(p.pending(), 0);
    });
}

#[test]
fn packed_counts_token_round_trip_across_threads() {
    explore("packed_counts_token_round_trip_across_threads", || {
        let id = PeerId::new("c").unwrap();
        let p = Peer::detached(id.clone(), 1);
        // A foreign caller takes the request as a raw token and finishes it on another
        // thread, while the list lets go of the peer.
        let token = p.start_request().into_raw() as usize;
        let t = thread::spawn(move || {
            // SAFETY: the token came from into_raw above and is used once.
            let request = unsafe { crate::peer::InFlight::from_raw(token as *const ()) };
            let again = request.peer_ref();
            drop(request);
            drop(again);
        });
        drop(p);
        t.join().unwrap();
        assert_eq!(id.holders(), 1);
    });
}

// ---- the published snapshot ------------------------------------------------------------

/// Set while the modelled chooser drops one of its cached structures. loom runs one thread
/// at a time and an `Arc` drop has no loom operation inside, so nothing else runs while it
/// is set.
static CHOOSER_DROPPING: AtomicBool = AtomicBool::new(false);

/// A published structure that fails the model when a chooser frees it.
struct Structure(u32);

impl Drop for Structure {
    fn drop(&mut self) {
        assert!(
            !CHOOSER_DROPPING.load(StdOrdering::Relaxed),
            "a chooser dropped the last reference to structure {}",
            self.0
        );
    }
}

/// A stripe's cached view, refreshed as `round-robin` does: compare the generation, reload
/// when it moved.
fn choose_from(publisher: &Publisher<Structure>, cached: &mut Arc<Published<Structure>>) -> u32 {
    let generation = publisher.generation();
    if cached.generation != generation {
        let fresh = publisher.load();
        assert!(
            fresh.generation >= generation,
            "loaded generation {} after reading {generation}",
            fresh.generation
        );
        CHOOSER_DROPPING.store(true, StdOrdering::Relaxed);
        drop(std::mem::replace(cached, fresh));
        CHOOSER_DROPPING.store(false, StdOrdering::Relaxed);
    }
    cached.value.0
}

#[test]
fn snapshot_chooser_never_frees_a_replaced_structure() {
    explore("snapshot_chooser_never_frees_a_replaced_structure", || {
        let publisher = loom::sync::Arc::new(Publisher::new(Structure(0)));
        let writer = publisher.clone();
        let t = thread::spawn(move || {
            for v in 1..=3 {
                writer.republish(true, |_| Some(Structure(v)));
            }
        });
        let mut cached = publisher.load();
        let mut last = 0;
        for _ in 0..2 {
            let seen = choose_from(&publisher, &mut cached);
            assert!(seen >= last, "went back from {last} to {seen}");
            last = seen;
        }
        t.join().unwrap();
        assert_eq!(choose_from(&publisher, &mut cached), 3);
        CHOOSER_DROPPING.store(true, StdOrdering::Relaxed);
        drop(cached);
        CHOOSER_DROPPING.store(false, StdOrdering::Relaxed);
        // The writer still holds every replaced structure nobody released earlier; it frees
        // them (the model ends by dropping the publisher, on this thread, as a writer).
        drop(publisher);
    });
}

#[test]
fn snapshot_two_choosers_and_a_writer() {
    explore("snapshot_two_choosers_and_a_writer", || {
        let publisher = loom::sync::Arc::new(Publisher::new(Structure(0)));
        let writer = publisher.clone();
        let w = thread::spawn(move || {
            for v in 1..=2 {
                writer.republish(true, |_| Some(Structure(v)));
            }
        });
        let other = publisher.clone();
        let c = thread::spawn(move || {
            let mut cached = other.load();
            let first = choose_from(&other, &mut cached);
            let second = choose_from(&other, &mut cached);
            assert!(second >= first);
            CHOOSER_DROPPING.store(true, StdOrdering::Relaxed);
            drop(cached);
            CHOOSER_DROPPING.store(false, StdOrdering::Relaxed);
        });
        let mut cached = publisher.load();
        let _ = choose_from(&publisher, &mut cached);
        w.join().unwrap();
        c.join().unwrap();
        assert_eq!(choose_from(&publisher, &mut cached), 2);
        CHOOSER_DROPPING.store(true, StdOrdering::Relaxed);
        drop(cached);
        CHOOSER_DROPPING.store(false, StdOrdering::Relaxed);
    });
}

#[test]
fn snapshot_staged_batches_publish_in_stage_order() {
    explore("snapshot_staged_batches_publish_in_stage_order", || {
        let publisher = loom::sync::Arc::new(Publisher::new(Vec::<String>::new()));
        // The list's lock: stages happen under it, in the order of the changes.
        let list_lock = loom::sync::Arc::new(Mutex::new(()));
        let order = loom::sync::Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let (publisher, list_lock, order) =
                    (publisher.clone(), list_lock.clone(), order.clone());
                thread::spawn(move || {
                    let p = peer(name);
                    {
                        let _locked = list_lock.lock().unwrap();
                        publisher.stage(std::slice::from_ref(&p), &[]);
                        order.lock().unwrap().push(name.to_owned());
                    }
                    // batch_end: no lock of the list held.
                    publisher.publish_staged(|current, changes| {
                        let mut next = current.clone();
                        next.extend(changes.added.iter().map(|p| p.id().to_string()));
                        next
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let published = publisher.peek().value.clone();
        assert_eq!(published, *order.lock().unwrap());
    });
}

// ---- the event bus ---------------------------------------------------------------------

#[test]
fn event_bus_one_deliverer_in_order_none_stranded() {
    explore("event_bus_one_deliverer_in_order_none_stranded", || {
        let bus = Arc::new(EventBus::default());
        let inside = loom::sync::Arc::new(AtomicUsize::new(0));
        let seen = loom::sync::Arc::new(Mutex::new(Vec::<String>::new()));
        let (inside_cb, seen_cb) = (inside.clone(), seen.clone());
        let subscription = bus.subscribe(Arc::new(move |e: &PeerEvent| {
            let before = inside_cb.fetch_add(1, Ordering::SeqCst);
            assert_eq!(before, 0, "two deliveries at once");
            seen_cb.lock().unwrap().push(e.to_string());
            inside_cb.fetch_sub(1, Ordering::SeqCst);
        }));
        // The list's lock: events are queued under it, in the order of the changes.
        let list_lock = loom::sync::Arc::new(Mutex::new(Vec::<String>::new()));
        let threads: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let (bus, list_lock) = (bus.clone(), list_lock.clone());
                thread::spawn(move || {
                    {
                        let mut queued = list_lock.lock().unwrap();
                        let event = PeerEvent {
                            kind: EventKind::Added,
                            peer: PeerId::new(name).unwrap(),
                            detail: String::new(),
                        };
                        queued.push(event.to_string());
                        bus.push([event]);
                    }
                    bus.deliver();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Whoever delivered, every queued event arrived once, in the order it was queued.
        assert_eq!(*seen.lock().unwrap(), *list_lock.lock().unwrap());
        drop(subscription);
    });
}

#[test]
fn event_bus_reentrant_subscriber_delivers_after_it_returns() {
    explore(
        "event_bus_reentrant_subscriber_delivers_after_it_returns",
        || {
            let bus = Arc::new(EventBus::default());
            let seen = loom::sync::Arc::new(Mutex::new(Vec::<String>::new()));
            let inside = loom::sync::Arc::new(AtomicUsize::new(0));
            let weak = Arc::downgrade(&bus);
            let (seen_cb, inside_cb) = (seen.clone(), inside.clone());
            let subscription = bus.subscribe(Arc::new(move |e: &PeerEvent| {
                let before = inside_cb.fetch_add(1, Ordering::SeqCst);
                assert_eq!(before, 0, "two deliveries at once");
                seen_cb.lock().unwrap().push(e.to_string());
                // A subscriber that causes another event (it calls back into the list).
                if e.kind == EventKind::Added {
                    if let Some(bus) = weak.upgrade() {
                        bus.push([PeerEvent {
                            kind: EventKind::Available,
                            peer: e.peer.clone(),
                            detail: String::new(),
                        }]);
                        bus.deliver(); // another delivery is running: left to it
                    }
                }
                inside_cb.fetch_sub(1, Ordering::SeqCst);
            }));
            let other = bus.clone();
            let t = thread::spawn(move || {
                other.push([PeerEvent {
                    kind: EventKind::Removed,
                    peer: PeerId::new("b").unwrap(),
                    detail: String::new(),
                }]);
                other.deliver();
            });
            bus.push([PeerEvent {
                kind: EventKind::Added,
                peer: PeerId::new("a").unwrap(),
                detail: String::new(),
            }]);
            bus.deliver();
            t.join().unwrap();
            let seen = seen.lock().unwrap().clone();
            assert_eq!(seen.len(), 3, "{seen:?}");
            let added = seen.iter().position(|e| e == "added a").unwrap();
            let available = seen.iter().position(|e| e == "available a").unwrap();
            assert!(added < available, "{seen:?}");
            drop(subscription);
        },
    );
}
