//! The relay protocol between the balancer and its backends: sequence numbers and acks,
//! so that a failover re-sends exactly the client messages the old backend had not
//! acknowledged.
//!
//! # Handshake
//!
//! The balancer dials `ws://<peer id><client's path>` with these headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Peerlb-Session` | the session id (the same across failovers) |
//! | `X-Peerlb-Resume` | the sequence number of the first message this connection will carry (1 on a new session; after a failover, the first message the old backend did not acknowledge) |
//! | `X-Forwarded-For` | the client's address |
//!
//! A backend that refuses the session on purpose answers the handshake with HTTP 401 or
//! 403: the balancer *declines* the session and closes the client with 1008 (policy
//! violation). Any other refusal (connection refused, 5xx, a timeout) is a failed attempt:
//! the balancer fails over.
//!
//! # Messages
//!
//! Every frame is a text frame holding one JSON object.
//!
//! * Balancer → backend: each client message, after the valves, as
//!   `{"seq": N, "data": "<text>"}` (a binary client message: `"data_b64"` with its
//!   base64). Sequence numbers start at 1 and go up by one per client message; a replay
//!   after a failover repeats the same numbers.
//! * Backend → balancer: `{"ack": N}` acknowledges every message up to `N`;
//!   `{"data": "<text>"}` (or `"data_b64"`) is a message for the client; both may come in
//!   one frame, `{"ack": N, "data": "..."}`, which is how a backend should answer a
//!   message: the answer and its acknowledgement arrive together or not at all. Frames
//!   that are not such an object are passed to the client as they are.
//!
//! # Delivery
//!
//! The balancer keeps every client message until it is acknowledged. After an abnormal
//! closure of the backend connection (a reset, an end without a close frame, or close
//! code 1006, 1011, 1012, 1013 or 1014) it fails the session over and re-sends the
//! unacknowledged messages, in order, on the new connection before any new one. Only the
//! current backend's frames reach the client. So the client sees each answer once and in
//! order; a backend may see a message a second time when the old backend processed it but
//! died before its answer left (at least once to backends, exactly once to the client when
//! backends answer with the ack in the same frame).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Header carrying the session id.
pub const SESSION_HEADER: &str = "X-Peerlb-Session";
/// Header carrying the first sequence number of the connection.
pub const RESUME_HEADER: &str = "X-Peerlb-Resume";

/// Close codes from a backend that mean "fail over" rather than "close the client": 1006
/// (abnormal), 1011 (internal error), 1012 (service restart), 1013 (try again later),
/// 1014 (bad gateway).
pub const ABNORMAL_CLOSE_CODES: [u16; 5] = [1006, 1011, 1012, 1013, 1014];

/// A client message's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Payload {
    /// The payload of a data message (`None` for control frames).
    pub fn of(message: &Message) -> Option<Payload> {
        match message {
            Message::Text(t) => Some(Payload::Text(t.as_str().to_owned())),
            Message::Binary(b) => Some(Payload::Binary(b.to_vec())),
            _ => None,
        }
    }

    /// The WebSocket message carrying it.
    pub fn into_message(self) -> Message {
        match self {
            Payload::Text(t) => Message::Text(t.into()),
            Payload::Binary(b) => Message::Binary(b.into()),
        }
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Binary(b) => b.len(),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn put(self, object: &mut serde_json::Map<String, Value>) {
        match self {
            Payload::Text(t) => object.insert("data".into(), t.into()),
            Payload::Binary(b) => object.insert("data_b64".into(), STANDARD.encode(b).into()),
        };
    }

    fn take(object: &serde_json::Map<String, Value>) -> Option<Payload> {
        if let Some(Value::String(t)) = object.get("data") {
            return Some(Payload::Text(t.clone()));
        }
        let Some(Value::String(b)) = object.get("data_b64") else {
            return None;
        };
        STANDARD.decode(b).ok().map(Payload::Binary)
    }
}

/// The frame carrying client message `seq` to a backend.
pub fn to_backend(seq: u64, payload: Payload) -> Message {
    let mut object = serde_json::Map::new();
    object.insert("seq".into(), seq.into());
    payload.put(&mut object);
    Message::Text(Value::Object(object).to_string().into())
}

/// What a backend's frame says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromBackend {
    /// Messages up to this one are acknowledged.
    pub ack: Option<u64>,
    /// A message for the client.
    pub payload: Option<Payload>,
}

/// Reads a backend's data frame: an envelope, or (anything else) a message passed to the
/// client as it is.
pub fn from_backend(message: &Message) -> FromBackend {
    if let Message::Text(text) = message {
        if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text.as_str()) {
            let ack = object.get("ack").and_then(Value::as_u64);
            let payload = Payload::take(&object);
            if ack.is_some() || payload.is_some() {
                return FromBackend { ack, payload };
            }
        }
    }
    FromBackend {
        ack: None,
        payload: Payload::of(message),
    }
}

/// What a backend reads from a balancer's frame: the sequence number and the payload.
pub fn read_to_backend(message: &Message) -> Option<(u64, Payload)> {
    let Message::Text(text) = message else {
        return None;
    };
    let Value::Object(object) = serde_json::from_str::<Value>(text.as_str()).ok()? else {
        return None;
    };
    let seq = object.get("seq").and_then(Value::as_u64)?;
    Some((seq, Payload::take(&object)?))
}

/// A backend's answer to message `seq`: its acknowledgement and the message for the
/// client, in one frame.
pub fn answer(seq: u64, payload: Payload) -> Message {
    let mut object = serde_json::Map::new();
    object.insert("ack".into(), seq.into());
    payload.put(&mut object);
    Message::Text(Value::Object(object).to_string().into())
}

/// A bare acknowledgement.
pub fn ack(seq: u64) -> Message {
    Message::Text(json!({ "ack": seq }).to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let m = to_backend(7, Payload::Text("hi".into()));
        assert_eq!(read_to_backend(&m), Some((7, Payload::Text("hi".into()))));
        let b = to_backend(8, Payload::Binary(vec![0, 255, 3]));
        assert_eq!(
            read_to_backend(&b),
            Some((8, Payload::Binary(vec![0, 255, 3])))
        );
        let a = answer(7, Payload::Text("echo".into()));
        assert_eq!(
            from_backend(&a),
            FromBackend {
                ack: Some(7),
                payload: Some(Payload::Text("echo".into()))
            }
        );
        assert_eq!(
            from_backend(&ack(9)),
            FromBackend {
                ack: Some(9),
                payload: None
            }
        );
    }

    #[test]
    fn other_frames_pass_through() {
        let plain = Message::Text("not json".into());
        assert_eq!(
            from_backend(&plain),
            FromBackend {
                ack: None,
                payload: Some(Payload::Text("not json".into()))
            }
        );
        let object = Message::Text(r#"{"hello":1}"#.into());
        assert_eq!(
            from_backend(&object).payload,
            Some(Payload::Text(r#"{"hello":1}"#.into()))
        );
        assert_eq!(read_to_backend(&Message::Text("{}".into())), None);
    }
}
