//! Transports are user code: they may re-enter the list, fail, or panic, and the list must
//! neither deadlock nor break.

use std::sync::{Arc, Mutex};

use peerlb::{
    ConnectionStatus, ErrorCode, ListOptions, PeerId, PeerList, Request, Subscriber, Transport,
};

type OnRetain = Box<dyn Fn(&PeerList, &PeerId) + Send + Sync>;

/// Runs `on_retain` inside retain (with the list available to it), then marks available.
struct Reentrant {
    /// The list under test; a cycle (list -> transport -> list) broken by `detach`.
    list: Mutex<Option<PeerList>>,
    on_retain: OnRetain,
    calls: Mutex<Vec<String>>,
}

impl Transport for Reentrant {
    fn retain(&self, id: &PeerId, sub: &Subscriber) -> Result<(), String> {
        self.calls.lock().unwrap().push(format!("retain {id}"));
        sub.set_status(ConnectionStatus::Available);
        let list = self.list.lock().unwrap().clone();
        if let Some(list) = list {
            (self.on_retain)(&list, id);
        }
        Ok(())
    }
    fn release(&self, id: &PeerId, sub: &Subscriber) -> Result<(), String> {
        self.calls.lock().unwrap().push(format!("release {id}"));
        // Reports after release are stale and must be ignored, not deadlock.
        sub.set_status(ConnectionStatus::Available);
        Ok(())
    }
}

fn reentrant(f: impl Fn(&PeerList, &PeerId) + Send + Sync + 'static) -> (PeerList, Arc<Reentrant>) {
    let t = Arc::new(Reentrant {
        list: Mutex::new(None),
        on_retain: Box::new(f),
        calls: Mutex::new(Vec::new()),
    });
    let list = PeerList::new(ListOptions::default().shuffle(false).transport(t.clone())).unwrap();
    *t.list.lock().unwrap() = Some(list.clone());
    (list, t)
}

impl Reentrant {
    fn detach(&self) {
        self.list.lock().unwrap().take();
    }
}

#[test]
fn retain_may_update_the_list() {
    let (list, t) = reentrant(|list, id| {
        if id.as_str() == "a" {
            list.update(["b"], None::<&str>).unwrap();
        }
    });
    list.update(["a"], None::<&str>).unwrap();
    list.start().unwrap();
    assert_eq!(*t.calls.lock().unwrap(), ["retain a", "retain b"]);
    assert_eq!(list.introspect().summary, "Running (2/2 available)");
    list.stop().unwrap();
    t.detach();
}

#[test]
fn retain_may_choose_and_introspect() {
    let (list, t) = reentrant(|list, id| {
        assert_eq!(list.introspect().state, "running");
        if id.as_str() == "a" {
            // The peer being retained is not offered until its retain returns.
            let err = list.choose(&Request::new()).unwrap_err();
            assert!(err.to_string().contains("1 still being retained"), "{err}");
        } else {
            assert_eq!(list.choose(&Request::new()).unwrap().peer().as_str(), "a");
        }
    });
    list.update(["a"], None::<&str>).unwrap();
    list.start().unwrap();
    list.update(["b"], None::<&str>).unwrap();
    list.stop().unwrap();
    t.detach();
}

#[test]
fn retain_may_remove_the_peer_it_is_retaining() {
    let (list, t) = reentrant(|list, id| {
        if id.as_str() == "a" {
            list.update(Vec::<String>::new(), ["a"]).unwrap();
        }
    });
    list.start().unwrap();
    list.update(["a"], None::<&str>).unwrap();
    // a was removed while being retained: it is released once retain returns.
    assert_eq!(*t.calls.lock().unwrap(), ["retain a", "release a"]);
    assert_eq!(list.len(), 0);
    list.stop().unwrap();
    t.detach();
}

#[test]
fn retain_may_stop_the_list() {
    let (list, t) = reentrant(|list, id| {
        if id.as_str() == "a" {
            list.stop().unwrap();
        }
    });
    list.update(["a"], None::<&str>).unwrap();
    list.start().unwrap();
    assert!(!list.is_running());
    assert_eq!(*t.calls.lock().unwrap(), ["retain a", "release a"]);
    assert_eq!(list.introspect().peers[0].status, "uninitialized");
    t.detach();
}

struct Faulty {
    panic_on: &'static str,
}

impl Transport for Faulty {
    fn retain(&self, id: &PeerId, sub: &Subscriber) -> Result<(), String> {
        if id.as_str() == self.panic_on {
            panic!("transport bug for {id}");
        }
        if id.as_str().starts_with("err") {
            return Err("refused".into());
        }
        sub.set_status(ConnectionStatus::Available);
        Ok(())
    }
    fn release(&self, id: &PeerId, _sub: &Subscriber) -> Result<(), String> {
        if id.as_str() == "sticky" {
            panic!("cannot release {id}");
        }
        Ok(())
    }
}

#[test]
fn panicking_and_failing_transports_become_errors() {
    let list = PeerList::new(
        ListOptions::default()
            .shuffle(false)
            .transport(Arc::new(Faulty { panic_on: "boom" })),
    )
    .unwrap();
    list.update(["ok", "boom", "err1", "sticky"], None::<&str>)
        .unwrap();
    let err = list.start().unwrap_err();
    assert_eq!(err.code(), ErrorCode::TransportFailed);
    assert_eq!(err.errors().len(), 2);
    assert!(
        err.to_string().contains("panicked: transport bug for boom"),
        "{err}"
    );
    assert!(err.to_string().contains("refused"), "{err}");
    let intro = list.introspect();
    let ids: Vec<&str> = intro.peers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["ok", "sticky"]);
    assert_eq!(list.choose(&Request::new()).unwrap().peer().as_str(), "ok");
    let err = list.stop().unwrap_err();
    assert_eq!(err.code(), ErrorCode::TransportFailed);
    assert!(!list.is_running());
    list.start().unwrap();
}

#[test]
fn dropping_a_running_list_releases_its_peers() {
    #[derive(Default)]
    struct Counting(Mutex<Vec<String>>);
    impl Transport for Counting {
        fn retain(&self, _: &PeerId, s: &Subscriber) -> Result<(), String> {
            s.set_status(ConnectionStatus::Available);
            Ok(())
        }
        fn release(&self, id: &PeerId, _: &Subscriber) -> Result<(), String> {
            self.0.lock().unwrap().push(id.to_string());
            Ok(())
        }
    }
    let t = Arc::new(Counting::default());
    let list = PeerList::new(ListOptions::default().shuffle(false).transport(t.clone())).unwrap();
    list.update(["a", "b"], None::<&str>).unwrap();
    list.start().unwrap();
    let choice = list.choose(&Request::new()).unwrap();
    drop(list);
    assert_eq!(*t.0.lock().unwrap(), ["a", "b"]);
    // Finishing after the list is gone is safe.
    choice.finish(peerlb::Outcome::Ok, None);
}

#[test]
fn subscriber_outliving_its_list_is_harmless() {
    #[derive(Default)]
    struct Keep(Mutex<Option<Subscriber>>);
    impl Transport for Keep {
        fn retain(&self, _: &PeerId, s: &Subscriber) -> Result<(), String> {
            *self.0.lock().unwrap() = Some(s.clone());
            Ok(())
        }
        fn release(&self, _: &PeerId, _: &Subscriber) -> Result<(), String> {
            Ok(())
        }
    }
    let t = Arc::new(Keep::default());
    let list = PeerList::new(ListOptions::default().transport(t.clone())).unwrap();
    list.update(["a"], None::<&str>).unwrap();
    list.start().unwrap();
    let sub = t.0.lock().unwrap().clone().unwrap();
    assert!(sub.set_status(ConnectionStatus::Available));
    assert_eq!(sub.peer_id().as_str(), "a");
    drop(list);
    assert!(!sub.set_status(ConnectionStatus::Available));
}

/// Fails to retain `bad:1`; marks every other peer available.
struct FailOne;
impl Transport for FailOne {
    fn retain(&self, id: &PeerId, sub: &Subscriber) -> Result<(), String> {
        if id.as_str() == "bad:1" {
            return Err("nope".into());
        }
        sub.set_status(peerlb::ConnectionStatus::Available);
        Ok(())
    }
    fn release(&self, _id: &PeerId, _sub: &Subscriber) -> Result<(), String> {
        Ok(())
    }
}

/// A peer whose retain fails is dropped from the list: subscribers hear it added and
/// removed.
#[test]
fn retain_failure_is_added_then_removed() {
    let list = PeerList::new(ListOptions::default().transport(Arc::new(FailOne))).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let _sub = list.subscribe(move |e| log.lock().unwrap().push(e.to_string()));
    list.start().unwrap();
    let _ = list.update(["good:1", "bad:1"], None::<&str>);
    let events = seen.lock().unwrap().clone();
    println!("events: {events:?}; len {}", list.len());
    assert_eq!(list.len(), 1, "bad:1 left the list");
    assert!(
        events.contains(&"removed bad:1".to_string()),
        "subscribers were told bad:1 was added but never that it left: {events:?}"
    );
}
