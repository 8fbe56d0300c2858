//! Message valves: a chain of filters every client message passes before it is sent to the
//! backend (`before_transmit`), and every backend message passes after it is received
//! (`after_receive`). A valve may rewrite a message or drop it (`None`), as the WebSocket
//! balancer's `MessageValve` does. Two ship here: [`SizeLimit`] and [`Stamper`].

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::protocol::Payload;

/// A filter on a session's messages. Both methods default to passing the message on.
pub trait MessageValve: Send + Sync {
    /// A client message on its way to the backend; `None` drops it.
    fn before_transmit(&self, payload: Payload) -> Option<Payload> {
        Some(payload)
    }

    /// A backend message on its way to the client; `None` drops it.
    fn after_receive(&self, payload: Payload) -> Option<Payload> {
        Some(payload)
    }
}

/// The valves of a balancer, applied in order.
#[derive(Default)]
pub struct ValveChain {
    valves: Vec<Box<dyn MessageValve>>,
}

impl ValveChain {
    /// Adds a valve at the end.
    pub fn push(&mut self, valve: impl MessageValve + 'static) {
        self.valves.push(Box::new(valve));
    }

    /// A client message through every valve (`None`: dropped).
    pub fn before_transmit(&self, payload: Payload) -> Option<Payload> {
        self.valves
            .iter()
            .try_fold(payload, |p, v| v.before_transmit(p))
    }

    /// A backend message through every valve (`None`: dropped).
    pub fn after_receive(&self, payload: Payload) -> Option<Payload> {
        self.valves
            .iter()
            .try_fold(payload, |p, v| v.after_receive(p))
    }
}

/// Drops messages larger than `max_bytes`, in both directions, and counts them.
pub struct SizeLimit {
    max_bytes: usize,
    dropped: AtomicU64,
}

impl SizeLimit {
    /// A limit of `max_bytes` per message.
    pub fn new(max_bytes: usize) -> SizeLimit {
        SizeLimit {
            max_bytes,
            dropped: AtomicU64::new(0),
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn check(&self, payload: Payload) -> Option<Payload> {
        if payload.len() > self.max_bytes {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "wsbalancer: dropped a {}-byte message (limit {} bytes)",
                payload.len(),
                self.max_bytes
            );
            return None;
        }
        Some(payload)
    }
}

impl MessageValve for SizeLimit {
    fn before_transmit(&self, payload: Payload) -> Option<Payload> {
        self.check(payload)
    }

    fn after_receive(&self, payload: Payload) -> Option<Payload> {
        self.check(payload)
    }
}

/// Stamps a field into every client message that is a JSON object (a text message such as
/// `{"op":"buy"}` reaches the backend as `{"op":"buy","via":"wsbalancer"}`); a field the
/// message has already is left as it is, and other messages pass unchanged.
pub struct Stamper {
    field: String,
    value: Value,
}

impl Stamper {
    /// Stamps `field` with `value` (a JSON value if it parses as one, else a string).
    pub fn new(field: &str, value: &str) -> Stamper {
        Stamper {
            field: field.to_owned(),
            value: serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into())),
        }
    }
}

impl MessageValve for Stamper {
    fn before_transmit(&self, payload: Payload) -> Option<Payload> {
        let Payload::Text(text) = &payload else {
            return Some(payload);
        };
        let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
            return Some(payload);
        };
        if object.contains_key(&self.field) {
            return Some(payload);
        }
        object.insert(self.field.clone(), self.value.clone());
        Some(Payload::Text(Value::Object(object).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_stamps_and_limits() {
        let mut chain = ValveChain::default();
        chain.push(Stamper::new("via", "wsbalancer"));
        chain.push(SizeLimit::new(40));
        let stamped = chain.before_transmit(Payload::Text(r#"{"n":1}"#.into()));
        assert_eq!(
            stamped,
            Some(Payload::Text(r#"{"n":1,"via":"wsbalancer"}"#.into()))
        );
        let kept = chain.before_transmit(Payload::Text(r#"{"via":"me"}"#.into()));
        assert_eq!(kept, Some(Payload::Text(r#"{"via":"me"}"#.into())));
        assert_eq!(
            chain.before_transmit(Payload::Text("plain".into())),
            Some(Payload::Text("plain".into()))
        );
        assert_eq!(chain.before_transmit(Payload::Binary(vec![0; 41])), None);
        assert_eq!(chain.after_receive(Payload::Text("x".repeat(41))), None);
        assert_eq!(
            chain.after_receive(Payload::Text("ok".into())),
            Some(Payload::Text("ok".into()))
        );
    }

    #[test]
    fn stamped_values_may_be_json() {
        let s = Stamper::new("hops", "2");
        assert_eq!(
            s.before_transmit(Payload::Text("{}".into())),
            Some(Payload::Text(r#"{"hops":2}"#.into()))
        );
    }
}
