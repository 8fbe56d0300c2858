//! Test support shared by the integration tests: a transport driven by the test.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use peerlb::{ConnectionStatus, PeerId, Subscriber, Transport};

/// A transport whose peers' statuses the test sets by hand.
#[derive(Default)]
pub struct Manual {
    pub initial: Option<ConnectionStatus>,
    pub subscribers: Mutex<HashMap<String, Subscriber>>,
    pub calls: Mutex<Vec<String>>,
}

impl Manual {
    pub fn new(initial: Option<ConnectionStatus>) -> Arc<Manual> {
        Arc::new(Manual {
            initial,
            ..Default::default()
        })
    }

    /// Reports `status` for `id`; false when the peer was never retained or is stale.
    pub fn set(&self, id: &str, status: ConnectionStatus) -> bool {
        let sub = self.subscribers.lock().unwrap().get(id).cloned();
        sub.is_some_and(|s| s.set_status(status))
    }
}

impl Transport for Manual {
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        self.calls.lock().unwrap().push(format!("retain {id}"));
        self.subscribers
            .lock()
            .unwrap()
            .insert(id.to_string(), subscriber.clone());
        if let Some(s) = self.initial {
            subscriber.set_status(s);
        }
        Ok(())
    }

    fn release(&self, id: &PeerId, _subscriber: &Subscriber) -> Result<(), String> {
        self.calls.lock().unwrap().push(format!("release {id}"));
        Ok(())
    }

    fn name(&self) -> &str {
        "manual"
    }
}
