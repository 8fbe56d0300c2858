//! The admin endpoint, driven by a real HTTP client (curl) over loopback.

use std::io::Write;
use std::process::{Command, Stdio};

use peerlb::admin_http::{serve_admin, serve_admin_with, AdminOptions};
use peerlb::{AdminResult, ErrorCode, ListOptions, Outcome, PeerList, Request};
use serde_json::Value;

/// One request with curl: (status, body).
fn curl(method: &str, url: &str, headers: &[&str], body: Option<&[u8]>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}", url]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl runs (the Makefile installs it)");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(b) = body {
        stdin.write_all(b).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn list(name: &str) -> PeerList {
    let list = PeerList::new(ListOptions::default().name(name).shuffle(false)).unwrap();
    list.update(["a:1", "b:1"], None::<&str>).unwrap();
    list.start().unwrap();
    list
}

#[test]
fn routes_answer_with_json_and_change_the_list() {
    let lst = list("admin-routes");
    lst.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Ok, None);
    let server = serve_admin("127.0.0.1:0").unwrap();
    let base = format!("{}/lists/admin-routes", server.url());

    let (code, body) = curl("GET", &format!("{}/lists", server.url()), &[], None);
    assert_eq!(code, 200);
    let lists = json(&body);
    let mine = lists
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "admin-routes")
        .unwrap();
    assert_eq!(mine["total"], 2);
    assert!(mine.get("peers").is_none());

    let (code, body) = curl("GET", &format!("{base}/backends"), &[], None);
    assert_eq!(code, 200);
    assert_eq!(json(&body).as_array().unwrap().len(), 2);

    let (code, body) = curl("GET", &format!("{base}/backends/a:1"), &[], None);
    assert_eq!(code, 200);
    assert_eq!(json(&body)["chosen"], 1);

    let (code, body) = curl("POST", &format!("{base}/backends/a:1/disable"), &[], None);
    assert_eq!(
        (code, json(&body)["code"].clone()),
        (200, AdminResult::Success.as_u32().into())
    );
    assert_eq!(json(&body)["result"], "success");
    let (code, body) = curl("POST", &format!("{base}/backends/a:1/disable"), &[], None);
    assert_eq!(code, 200);
    assert_eq!(json(&body)["code"], AdminResult::NoActionRequired.as_u32());
    assert_eq!(json(&body)["reason"], "NoActionRequired");
    assert_eq!(lst.introspect().disabled, 1);
    let (code, _) = curl("POST", &format!("{base}/backends/a:1/enable"), &[], None);
    assert_eq!(code, 200);
    let (code, body) = curl("POST", &format!("{base}/backends/a:1/reset"), &[], None);
    assert_eq!((code, json(&body)["code"].clone()), (200, 3.into()));
    let (code, body) = curl("POST", &format!("{base}/backends/a:1/failover"), &[], None);
    assert_eq!(
        (code, json(&body)["code"].clone()),
        (200, 3.into()),
        "{body}"
    );

    let (code, body) = curl(
        "POST",
        &format!("{base}/backends"),
        &["Content-Type: application/json"],
        Some(br#"{"id": "c/1:80", "weight": 3}"#),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(json(&body)["code"], 1);
    assert_eq!(json(&body)["id"], "c/1:80");
    assert_eq!(json(&body)["backend"]["weight"], 3);
    let (code, body) = curl(
        "POST",
        &format!("{base}/backends"),
        &[],
        Some(br#"{"id": "c/1:80", "wieght": 3}"#),
    );
    assert_eq!(code, 409, "{body}");
    let answer = json(&body);
    assert_eq!(
        (&answer["result"], &answer["code"], &answer["error"]),
        (&"failed".into(), &4.into(), &"peer-already-in-list".into())
    );
    assert_eq!(answer["ignored"], serde_json::json!(["wieght"]));
    assert_eq!(lst.len(), 3);
    let (code, body) = curl("GET", &format!("{base}/backends/c%2F1:80"), &[], None);
    assert_eq!((code, json(&body)["id"].clone()), (200, "c/1:80".into()));

    let (code, _) = curl("DELETE", &format!("{base}/backends/c%2F1:80"), &[], None);
    assert_eq!(code, 200);
    assert_eq!(lst.len(), 2);

    let (code, body) = curl("GET", &format!("{}/metrics", server.url()), &[], None);
    assert_eq!(code, 200);
    assert!(
        body.contains(r#"peerlb_chosen_total{list="admin-routes",peer="a:1"} 1"#),
        "{body}"
    );
    let (code, body) = curl(
        "GET",
        &format!("{}/metrics", server.url()),
        &["Accept: application/openmetrics-text; version=1.0.0"],
        None,
    );
    assert_eq!(code, 200);
    assert!(body.ends_with("# EOF\n"));
}

#[test]
fn bad_input_gets_a_4xx_json_error_and_changes_nothing() {
    let lst = list("admin-bad");
    let server = serve_admin(":0").unwrap();
    assert!(server.local_addr().ip().is_loopback());
    let base = format!("{}/lists/admin-bad", server.url());
    // (method, url, body, status, error code)
    type Case<'a> = (&'a str, String, Option<&'a [u8]>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "GET",
            format!("{}/lists/nope/backends", server.url()),
            None,
            404,
            "list-not-found",
        ),
        (
            "GET",
            format!("{base}/backends/zzz:1"),
            None,
            404,
            "peer-not-in-list",
        ),
        (
            "POST",
            format!("{base}/backends/zzz:1/disable"),
            None,
            404,
            "peer-not-in-list",
        ),
        (
            "POST",
            format!("{base}/backends/a:1/explode"),
            None,
            404,
            "not-found",
        ),
        (
            "DELETE",
            format!("{base}/backends/zzz:1"),
            None,
            404,
            "peer-not-in-list",
        ),
        (
            "POST",
            format!("{base}/backends"),
            Some(b"{not json"),
            400,
            "invalid-argument",
        ),
        (
            "POST",
            format!("{base}/backends"),
            Some(b"[1, 2]"),
            400,
            "invalid-argument",
        ),
        (
            "POST",
            format!("{base}/backends"),
            Some(br#"{"weight": 2}"#),
            400,
            "invalid-argument",
        ),
        (
            "POST",
            format!("{base}/backends"),
            Some(br#"{"id": ""}"#),
            400,
            "invalid-argument",
        ),
        (
            "POST",
            format!("{base}/backends"),
            Some(br#"{"id": "x:1", "weight": 0}"#),
            400,
            "invalid-argument",
        ),
        (
            "POST",
            format!("{base}/backends"),
            Some(br#"{"id": "x:1", "weight": -1}"#),
            400,
            "invalid-argument",
        ),
        (
            "POST",
            format!("{base}/backends"),
            Some(br#"{"id": "a:1"}"#),
            409,
            "peer-already-in-list",
        ),
        (
            "PUT",
            format!("{base}/backends"),
            None,
            405,
            "method-not-allowed",
        ),
        (
            "POST",
            format!("{}/metrics", server.url()),
            None,
            405,
            "method-not-allowed",
        ),
        (
            "GET",
            format!("{base}/backends/a:1/disable"),
            None,
            405,
            "method-not-allowed",
        ),
        (
            "GET",
            format!("{}/nowhere", server.url()),
            None,
            404,
            "not-found",
        ),
        (
            "GET",
            format!("{base}/backends/%FF"),
            None,
            400,
            "invalid-argument",
        ),
    ];
    for (method, url, body, status, code) in cases {
        let (got, text) = curl(method, &url, &[], body);
        assert_eq!(got, status, "{method} {url}: {text}");
        let v = json(&text);
        assert_eq!(v["error"], code, "{method} {url}: {text}");
        assert_eq!((&v["result"], &v["code"]), (&"failed".into(), &4.into()));
        assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let long_id = format!(r#"{{"id": "{}"}}"#, "x".repeat(2000));
    let (got, text) = curl(
        "POST",
        &format!("{base}/backends"),
        &[],
        Some(long_id.as_bytes()),
    );
    assert_eq!(got, 400, "{text}");
    assert_eq!(json(&text)["error"], "invalid-argument");
    let huge = vec![b' '; 70 * 1024];
    let (got, text) = curl("POST", &format!("{base}/backends"), &[], Some(&huge));
    assert_eq!(got, 413, "{text}");
    assert_eq!(json(&text)["error"], "payload-too-large");
    // Nothing changed.
    let i = lst.introspect();
    assert_eq!((i.total, i.disabled), (2, 0));
}

#[test]
fn a_token_is_required_when_set() {
    let _lst = list("admin-token");
    let server = serve_admin_with(AdminOptions {
        address: Some("127.0.0.1:0".into()),
        token: Some("s3cret".into()),
    })
    .unwrap();
    let url = format!("{}/lists", server.url());
    for headers in [
        &[][..],
        &["Authorization: Bearer wrong"][..],
        &["Authorization: Basic s3cret"][..],
        &["Authorization: Bearer s3cre"][..],
    ] {
        let (code, body) = curl("GET", &url, headers, None);
        assert_eq!(code, 401, "{headers:?}");
        assert_eq!(json(&body)["error"], "unauthorized");
    }
    let (code, _) = curl("GET", &url, &["Authorization: Bearer s3cret"], None);
    assert_eq!(code, 200);
    let (code, _) = curl(
        "POST",
        &format!("{}/lists/admin-token/backends/a:1/disable", server.url()),
        &["Authorization: Bearer wrong"],
        None,
    );
    assert_eq!(code, 401);
    assert_eq!(_lst.introspect().disabled, 0);
}

#[test]
fn bad_options_are_invalid_arguments_and_stop_closes_the_port() {
    for (address, token) in [
        (Some("not an address"), None),
        (Some("127.0.0.1:99999"), None),
        (None, Some("has space")),
        (None, Some("")),
    ] {
        let err = serve_admin_with(AdminOptions {
            address: address.map(Into::into),
            token: token.map(Into::into),
        })
        .unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::InvalidArgument,
            "{address:?} {token:?}"
        );
    }
    let server = serve_admin("127.0.0.1:0").unwrap();
    let taken = serve_admin(&server.local_addr().to_string()).unwrap_err();
    assert_eq!(taken.code(), ErrorCode::InvalidArgument);
    let url = format!("{}/lists", server.url());
    assert_eq!(curl("GET", &url, &[], None).0, 200);
    server.stop();
    server.stop();
    // The port is closed: curl cannot connect (it reports code 000).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while curl("GET", &url, &[], None).0 != 0 {
        assert!(std::time::Instant::now() < deadline, "the port stayed open");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
