//! The admin HTTP API, on its own loopback port: the WebSocket balancer's backend
//! administrator over peerlb's admin calls. Every answer is JSON.
//!
//! | method and path | does | answer |
//! |---|---|---|
//! | `GET /backend/list` | every backend (`list_backends`) | a JSON array |
//! | `POST /backend/add` (JSON body `{"id": "host:port", "weight": 2}`) | `add_backend` | the result object |
//! | `GET /backend/config/{id}` | `backend_config` | the backend |
//! | `POST /backend/disable/{id}`, `/enable/{id}`, `/delete/{id}`, `/reset/{id}`, `/failover/{id}` | the admin action | the result object |
//! | `GET /session/list` | the open sessions | a JSON array |
//!
//! A result object is `{"result":"success","code":1}`,
//! `{"result":"success","code":3,"reason":"NoActionRequired"}` or
//! `{"result":"failed","code":4,"reason":"...","error":"<peerlb error code>"}`: the
//! balancer's result numbers (1 success, 3 no action required, 4 failed). A failed action
//! answers with a 4xx status: 404 for an unknown backend, 409 for one that exists already,
//! 400 for malformed input; a wrong method is 405, an unknown path 404, each with a JSON
//! error object, and none of them changes anything.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use peerlb::admin::{result_json, AdminOp};
use peerlb::{Error, ErrorCode};
use serde_json::json;
use tokio::net::TcpListener;

use crate::balancer::Balancer;

/// The largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// Serves the admin API on `listener` until the process ends.
pub async fn serve(balancer: Arc<Balancer>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let balancer = balancer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let balancer = balancer.clone();
                async move { Ok::<_, Infallible>(handle(&balancer, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON error object for a request that was not understood (`error` is not a peerlb
/// code but says what was wrong with the request).
fn refused(status: StatusCode, error: &str, reason: String) -> Response<Full<Bytes>> {
    let body = format!(
        r#"{{"result":"failed","code":{},"reason":{},"error":{}}}"#,
        peerlb::admin::RESULT_FAILED,
        json!(reason),
        json!(error)
    );
    answer(status, body)
}

/// The HTTP status of a failed admin operation.
fn status_of(error: &Error) -> StatusCode {
    match error.code() {
        ErrorCode::PeerNotInList => StatusCode::NOT_FOUND,
        ErrorCode::PeerAlreadyInList => StatusCode::CONFLICT,
        ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn wrong_method(method: &Method, allowed: &'static str) -> Response<Full<Bytes>> {
    let mut response = refused(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("{method} is not allowed here; use {allowed}"),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allowed));
    response
}

async fn handle(balancer: &Balancer, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let list = &balancer.list;
    match segments.as_slice() {
        ["backend", "list"] => {
            if method != Method::GET {
                return wrong_method(&method, "GET");
            }
            let body = serde_json::to_string(&list.list_backends()).expect("backends serialize");
            answer(StatusCode::OK, body)
        }
        ["session", "list"] => {
            if method != Method::GET {
                return wrong_method(&method, "GET");
            }
            answer(StatusCode::OK, balancer.sessions_json().to_string())
        }
        ["backend", "add"] => {
            if method != Method::POST {
                return wrong_method(&method, "POST");
            }
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return refused(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body-too-large",
                        format!("the body could not be read: {e}"),
                    )
                }
            };
            let Ok(text) = std::str::from_utf8(&body) else {
                return refused(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidArgument.as_str(),
                    "the body is not UTF-8".into(),
                );
            };
            let (result, body) = list.add_backend_result(text);
            let status = match &result {
                Ok(_) => StatusCode::OK,
                Err(e) => status_of(e),
            };
            answer(status, body)
        }
        ["backend", "config", id] => {
            if method != Method::GET {
                return wrong_method(&method, "GET");
            }
            match list.backend_config(&decode(id)) {
                Ok(config) => answer(StatusCode::OK, config),
                Err(e) => answer(status_of(&e), result_json(&Err(e))),
            }
        }
        ["backend", action, id] => {
            let Some(op) = AdminOp::from_name(action) else {
                return refused(
                    StatusCode::NOT_FOUND,
                    "not-found",
                    format!("no such action {action:?}"),
                );
            };
            if method != Method::POST {
                return wrong_method(&method, "POST");
            }
            let result = list.admin(op, &decode(id));
            let status = match &result {
                Ok(_) => StatusCode::OK,
                Err(e) => status_of(e),
            };
            answer(status, result_json(&result))
        }
        _ => refused(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no such endpoint {path:?}"),
        ),
    }
}

/// A path segment with `%XX` escapes decoded (ids such as `[::1]:80` arrive escaped).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}
