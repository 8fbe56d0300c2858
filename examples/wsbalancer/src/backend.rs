//! An echo backend speaking the relay protocol (`wsbackend`, and the demo's backends):
//! each message is answered, with its acknowledgement in the same frame, by the same
//! message; a JSON object gets a `"backend"` field naming this backend. A client message
//! `{"cmd":"close"}` makes it close the connection normally.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::protocol::{self, Payload};

/// How an echo backend behaves.
#[derive(Debug, Clone)]
pub struct EchoOptions {
    /// Its name, stamped into answers.
    pub name: String,
    /// Refuse every handshake with this HTTP status (e.g. 401).
    pub decline: Option<u16>,
}

/// The answer to one message.
pub fn echo(name: &str, payload: Payload) -> Payload {
    if let Payload::Text(text) = &payload {
        if let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) {
            object.insert("backend".into(), name.into());
            return Payload::Text(Value::Object(object).to_string());
        }
    }
    payload
}

/// Serves connections on `listener` until the process ends.
#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
pub async fn serve(listener: TcpListener, options: EchoOptions) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let options = options.clone();
        tokio::spawn(async move {
            let decline = options.decline;
            let accepted = tokio_tungstenite::accept_hdr_async(
                stream,
                move |_req: &Request, resp: Response| match decline {
                    Some(status) => {
                        let mut refusal = ErrorResponse::new(Some("declined".into()));
                        *refusal.status_mut() =
                            StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
                        Err(refusal)
                    }
                    None => Ok(resp),
                },
            )
            .await;
            let Ok(mut ws) = accepted else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                let Some((seq, payload)) = protocol::read_to_backend(&message) else {
                    continue;
                };
                if matches!(&payload, Payload::Text(t) if t.contains(r#""cmd":"close""#)) {
                    let _ = ws.send(protocol::ack(seq)).await;
                    let _ = ws
                        .close(Some(CloseFrame {
                            code: CloseCode::Normal,
                            reason: "asked to close".into(),
                        }))
                        .await;
                    return;
                }
                let reply = protocol::answer(seq, echo(&options.name, payload));
                if ws.send(reply).await.is_err() {
                    return;
                }
            }
            let _ = ws.send(Message::Close(None)).await;
        });
    }
}
