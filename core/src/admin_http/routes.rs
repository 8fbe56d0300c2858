//! The admin endpoint's routes (see the [module docs](super)).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::MAX_BODY_BYTES;
use crate::admin::{result_json, AdminOp, RESULT_FAILED};
use crate::error::{Error, ErrorCode};
use crate::metrics::MetricsFormat;
use crate::registry;

type Reply = Response<Full<Bytes>>;

/// A failed request: status, code and message.
struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    allow: Option<&'static str>,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    fn method(allow: &'static str) -> Failure {
        Failure {
            allow: Some(allow),
            ..Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                format!("this path takes {allow}"),
            )
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let status = match e.code() {
            ErrorCode::PeerNotInList => StatusCode::NOT_FOUND,
            ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorCode::PeerAlreadyInList => StatusCode::CONFLICT,
            ErrorCode::TransportFailed => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure::new(status, e.code().as_str(), e.to_string())
    }
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_string())));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

/// A failure as an admin result object: `result` "failed", `code` [`RESULT_FAILED`], the
/// message as `reason` and the error's code as `error` (what `result_json` writes).
fn failure_reply(f: Failure) -> Reply {
    let body =
        json!({"result": "failed", "code": RESULT_FAILED, "reason": f.message, "error": f.code});
    let mut reply = json_reply(f.status, &body);
    if let Some(allow) = f.allow {
        reply
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    if f.status == StatusCode::UNAUTHORIZED {
        reply.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"peerlb\""),
        );
    }
    reply
}

/// A JSON text the core wrote (`result_json`, `add_backend`) as a value.
fn parsed(text: &str) -> Value {
    serde_json::from_str(text).expect("the core writes valid JSON")
}

/// Equal in time whatever the bytes (the token must not leak through timing).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn authorized(request: &Request<Incoming>, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let Some(given) = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let given = given.trim();
    let Some((scheme, value)) = given.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && same(value.trim().as_bytes(), token.as_bytes())
}

/// What a request asks for, once parsed.
enum Route {
    Metrics(MetricsFormat),
    Lists,
    List(String),
    Backends(String),
    Backend(String, String),
    Add(String, Bytes),
    Admin(String, String, AdminOp),
}

/// Serves one request.
pub(super) async fn handle(
    request: Request<Incoming>,
    token: Option<Arc<str>>,
) -> Result<Reply, Infallible> {
    if !authorized(&request, token.as_deref()) {
        return Ok(failure_reply(Failure::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        )));
    }
    let route = match route(request).await {
        Ok(route) => route,
        Err(f) => return Ok(failure_reply(f)),
    };
    // Lists are read and changed on the blocking pool (a change may call a transport).
    let reply = crate::runtime::spawn_blocking(move || serve(route).unwrap_or_else(failure_reply))
        .await
        .unwrap_or_else(|e| {
            failure_reply(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the admin request failed: {e}"),
            ))
        });
    Ok(reply)
}

fn decode(segment: &str) -> Result<String, Failure> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid-argument",
                "a path segment is not UTF-8 once decoded",
            )
        })
}

async fn route(request: Request<Incoming>) -> Result<Route, Failure> {
    let method = request.method().clone();
    let raw: Vec<String> = request
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(decode)
        .collect::<Result<_, _>>()?;
    let path: Vec<&str> = raw.iter().map(String::as_str).collect();
    let get = |route: Route| {
        if method == Method::GET || method == Method::HEAD {
            Ok(route)
        } else {
            Err(Failure::method("GET"))
        }
    };
    match path.as_slice() {
        ["metrics"] => {
            let open_metrics = request
                .headers()
                .get(ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/openmetrics-text"));
            get(Route::Metrics(if open_metrics {
                MetricsFormat::OpenMetrics
            } else {
                MetricsFormat::Prometheus
            }))
        }
        ["lists"] => get(Route::Lists),
        ["lists", name] => get(Route::List(name.to_string())),
        ["lists", name, "backends"] => match method {
            Method::GET | Method::HEAD => Ok(Route::Backends(name.to_string())),
            Method::POST => {
                let name = name.to_string();
                Ok(Route::Add(name, read_body(request).await?))
            }
            _ => Err(Failure::method("GET, POST")),
        },
        ["lists", name, "backends", id] => match method {
            Method::GET | Method::HEAD => Ok(Route::Backend(name.to_string(), id.to_string())),
            Method::DELETE => Ok(Route::Admin(
                name.to_string(),
                id.to_string(),
                AdminOp::Delete,
            )),
            _ => Err(Failure::method("GET, DELETE")),
        },
        ["lists", name, "backends", id, action] => {
            let op = match *action {
                "disable" => AdminOp::Disable,
                "enable" => AdminOp::Enable,
                "reset" => AdminOp::Reset,
                "failover" => AdminOp::Failover,
                other => {
                    return Err(Failure::new(
                        StatusCode::NOT_FOUND,
                        "not-found",
                        format!(
                            "no admin action {other:?}; expected disable, enable, reset or failover"
                        ),
                    ))
                }
            };
            if method != Method::POST {
                return Err(Failure::method("POST"));
            }
            Ok(Route::Admin(name.to_string(), id.to_string(), op))
        }
        _ => Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no route {:?}", request.uri().path()),
        )),
    }
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, Failure> {
    match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        )),
        Err(e) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid-argument",
            format!("cannot read the body: {e}"),
        )),
    }
}

fn find(name: &str) -> Result<crate::PeerList, Failure> {
    registry::find(name).ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_FOUND,
            "list-not-found",
            format!("no list named {name:?}"),
        )
    })
}

fn backend_json(list: &crate::PeerList, id: &str) -> Result<Value, Failure> {
    Ok(parsed(&list.backend_config(id)?))
}

fn without_peers(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("peers");
    }
    v
}

fn serve(route: Route) -> Result<Reply, Failure> {
    match route {
        Route::Metrics(format) => {
            let mut reply =
                Response::new(Full::new(Bytes::from(crate::metrics::gather_as(format))));
            reply.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            Ok(reply)
        }
        Route::Lists => {
            let lists: Vec<Value> = registry::lists()
                .iter()
                .map(|l| without_peers(serde_json::to_value(l.introspect()).expect("serializes")))
                .collect();
            Ok(json_reply(StatusCode::OK, &Value::Array(lists)))
        }
        Route::List(name) => {
            let list = find(&name)?;
            Ok(json_reply(
                StatusCode::OK,
                &serde_json::to_value(list.introspect()).expect("serializes"),
            ))
        }
        Route::Backends(name) => {
            let list = find(&name)?;
            Ok(json_reply(
                StatusCode::OK,
                &serde_json::to_value(list.list_backends()).expect("serializes"),
            ))
        }
        Route::Backend(name, id) => {
            let list = find(&name)?;
            Ok(json_reply(StatusCode::OK, &backend_json(&list, &id)?))
        }
        Route::Add(name, body) => {
            let list = find(&name)?;
            let Ok(data) = std::str::from_utf8(&body) else {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-argument",
                    "the body is not UTF-8",
                ));
            };
            let (result, answer) = list.add_backend_result(data);
            let mut answer = parsed(&answer);
            match result {
                Ok(_) => {
                    if let Some(id) = answer["id"].as_str().map(str::to_owned) {
                        answer["backend"] = backend_json(&list, &id)?;
                    }
                    Ok(json_reply(StatusCode::CREATED, &answer))
                }
                Err(e) => Ok(json_reply(Failure::from(e).status, &answer)),
            }
        }
        Route::Admin(name, id, op) => {
            let list = find(&name)?;
            let result = list.admin(op, &id)?;
            Ok(json_reply(
                StatusCode::OK,
                &parsed(&result_json(&Ok(result))),
            ))
        }
    }
}
