//! Replays every `tests/conformance/*.json` scenario against the Rust API.
//! The format is described in `tests/conformance/README.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlb::retry::{Attempt, Retry, RetryBudget, RetryPolicy};
use peerlb::{
    AdminResult, Choice, Clock, ConnectionStatus, EjectionPolicy, Error, ListOptions, LoadReport,
    ManualClock, Outcome, PeerId, PeerList, PeerSpec, Reason, Request, Session, Subscriber,
    Subscription, Transport,
};
use serde_json::Value;

/// The scripted transport of the format: records calls, fails on request, and reports its
/// initial status from inside `retain`.
#[derive(Default)]
struct Scripted {
    initial: Option<ConnectionStatus>,
    fail_retain: Vec<String>,
    fail_release: Vec<String>,
    calls: Mutex<Vec<String>>,
    subscribers: Mutex<HashMap<String, Subscriber>>,
}

impl Transport for Scripted {
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        self.calls.lock().unwrap().push(format!("retain {id}"));
        if self.fail_retain.iter().any(|f| f == id.as_str()) {
            return Err(format!("scripted failure retaining {id}"));
        }
        self.subscribers
            .lock()
            .unwrap()
            .insert(id.to_string(), subscriber.clone());
        if let Some(status) = self.initial {
            subscriber.set_status(status);
        }
        Ok(())
    }

    fn release(&self, id: &PeerId, _subscriber: &Subscriber) -> Result<(), String> {
        self.calls.lock().unwrap().push(format!("release {id}"));
        if self.fail_release.iter().any(|f| f == id.as_str()) {
            return Err(format!("scripted failure releasing {id}"));
        }
        Ok(())
    }

    fn name(&self) -> &str {
        "scripted"
    }
}

struct Run {
    file: String,
    list: Option<PeerList>,
    transport: Option<Arc<Scripted>>,
    held: HashMap<String, Choice>,
    /// Names of held choices that were finished or dropped (finishing one again is
    /// `already-finished`; Rust's `Choice::finish` consumes the choice, so it cannot be
    /// called twice, and the runner checks the name instead).
    finished: HashSet<String>,
    clock: Option<ManualClock>,
    events: Arc<Mutex<Vec<String>>>,
    subscription: Option<Subscription>,
    budget: Option<Arc<RetryBudget>>,
    /// Open (or ended) sessions by name; dropping one closes it.
    sessions: HashMap<String, Session>,
    session_events: Arc<Mutex<Vec<String>>>,
    session_subscription: Option<Subscription>,
}

/// The outcome a `choose` / `choose_many` step finishes its choices with.
fn step_outcome(step: &Value) -> Outcome {
    step.get("outcome")
        .and_then(Value::as_str)
        .unwrap_or("ok")
        .parse()
        .expect("outcome")
}

/// The `ejection` of a `new` step: absent = default policy, `false` = off, or an object.
fn ejection_policy(ctx: &str, v: Option<&Value>) -> Result<Option<EjectionPolicy>, Error> {
    match v {
        None | Some(Value::Bool(true)) => Ok(Some(EjectionPolicy::default())),
        Some(Value::Bool(false)) => Ok(None),
        Some(Value::Object(o)) => {
            let mut p = EjectionPolicy::default();
            for (k, v) in o {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                p.set(k, &text)?;
            }
            Ok(Some(p))
        }
        Some(other) => panic!("{ctx}: bad ejection {other}"),
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().expect("string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn check_result<T>(ctx: &str, step: &Value, result: Result<T, Error>) -> Option<T> {
    let expected = step.get("error").and_then(Value::as_str);
    match (result, expected) {
        (Ok(v), None) => Some(v),
        (Ok(_), Some(code)) => panic!("{ctx}: expected error {code}, got success"),
        (Err(e), None) => panic!("{ctx}: unexpected error {}: {e}", e.code()),
        (Err(e), Some(code)) => {
            assert_eq!(e.code().as_str(), code, "{ctx}: wrong error code ({e})");
            if let Some(list) = step.get("errors") {
                let want = str_list(Some(list));
                let got: Vec<&str> = e.errors().iter().map(|x| x.code().as_str()).collect();
                assert_eq!(got, want, "{ctx}: individual errors ({e})");
            }
            None
        }
    }
}

impl Run {
    fn list(&self) -> &PeerList {
        self.list
            .as_ref()
            .expect("scenario must start with a `new` step")
    }

    fn new_list(&mut self, ctx: &str, step: &Value) {
        let mut opts = ListOptions::default().shuffle(
            step.get("shuffle")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        );
        if let Some(seed) = step.get("seed").and_then(Value::as_u64) {
            opts = opts.seed(seed);
        }
        if let Some(ff) = step.get("fail_fast").and_then(Value::as_bool) {
            opts = opts.fail_fast(ff);
        }
        if let Some(name) = step.get("name").and_then(Value::as_str) {
            opts = opts.name(name);
        }
        if let Some(limit) = step.get("max_pending").and_then(Value::as_u64) {
            opts = opts.max_pending(limit as usize);
        }
        if let Some(limit) = step.get("max_pending_per_peer").and_then(Value::as_u64) {
            opts = opts.max_pending_per_peer(limit as usize);
        }
        if let Some(on) = step.get("metrics").and_then(Value::as_bool) {
            opts = opts.metrics(on);
        }
        if let Some(on) = step.get("peer_labels").and_then(Value::as_bool) {
            opts = opts.peer_labels(on);
        }
        if let Some(capacity) = step.get("capacity").and_then(Value::as_u64) {
            opts = opts.capacity(capacity as usize);
        }
        if let Some(zone) = step.get("local_zone").and_then(Value::as_str) {
            opts = opts.local_zone(zone);
        }
        if let Some(size) = step.get("min_cluster_size").and_then(Value::as_u64) {
            opts = opts.min_cluster_size(size as usize);
        }
        if let Some(factor) = step.get("overprovisioning_factor").and_then(Value::as_f64) {
            opts = opts.overprovisioning_factor(factor);
        }
        self.sessions.clear();
        self.clock = None;
        match step.get("clock").and_then(Value::as_str) {
            None | Some("real") => {}
            Some("manual") => {
                let manual = ManualClock::new();
                opts = opts.clock(Clock::from(manual.clone()));
                self.clock = Some(manual);
            }
            Some(other) => panic!("{ctx}: unknown clock {other:?}"),
        }
        self.budget = None;
        self.transport = None;
        match step.get("transport") {
            None => {}
            Some(Value::String(s)) if s == "always-available" => {}
            Some(t) if t.get("kind").and_then(Value::as_str) == Some("scripted") => {
                let initial = match t.get("initial_status") {
                    Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.parse().expect("status")),
                    None => Some(ConnectionStatus::Available),
                    Some(other) => panic!("{ctx}: bad initial_status {other}"),
                };
                let scripted = Arc::new(Scripted {
                    initial,
                    fail_retain: str_list(t.get("fail_retain")),
                    fail_release: str_list(t.get("fail_release")),
                    ..Default::default()
                });
                opts = opts.transport(scripted.clone());
                self.transport = Some(scripted);
            }
            Some(other) => panic!("{ctx}: unknown transport {other}"),
        }
        let strategy = step
            .get("strategy")
            .and_then(Value::as_str)
            .unwrap_or("round-robin");
        let created = ejection_policy(ctx, step.get("ejection"))
            .and_then(|p| opts.ejection(p).strategy_name(strategy))
            .and_then(PeerList::new);
        self.list = check_result(ctx, step, created);
        self.held.clear();
        self.finished.clear();
        self.events.lock().unwrap().clear();
        self.subscription = self.list.as_ref().map(|list| {
            let log = self.events.clone();
            list.subscribe(move |e| log.lock().unwrap().push(e.to_string()))
        });
        self.session_events.lock().unwrap().clear();
        self.session_subscription = self.list.as_ref().map(|list| {
            let log = self.session_events.clone();
            list.subscribe_sessions(move |e| log.lock().unwrap().push(e.to_string()))
        });
    }

    fn choose(&mut self, ctx: &str, step: &Value) {
        let key = step
            .get("shard_key")
            .and_then(Value::as_str)
            .map(str::as_bytes);
        let timeout = step.get("timeout_ms").and_then(Value::as_u64);
        let make_request = || {
            let mut r = Request::new();
            if let Some(ms) = timeout {
                r = r.with_timeout(Duration::from_millis(ms));
            }
            if let Some(k) = key {
                r = r.with_shard_key(k);
            }
            r
        };
        let result = if let Some(during) = step.get("while_waiting") {
            let list = self.list().clone();
            let key_owned = key.map(<[u8]>::to_vec);
            let waiter = std::thread::spawn(move || {
                let mut r = Request::new();
                if let Some(ms) = timeout {
                    r = r.with_timeout(Duration::from_millis(ms));
                }
                if let Some(k) = &key_owned {
                    r = r.with_shard_key(k);
                }
                list.choose(&r)
            });
            std::thread::sleep(Duration::from_millis(20));
            for (i, inner) in during.as_array().expect("steps").iter().enumerate() {
                self.step(&format!("{ctx}.while_waiting[{i}]"), inner);
            }
            waiter.join().expect("waiting choose panicked")
        } else {
            self.list().choose(&make_request())
        };
        let Some(choice) = check_result(ctx, step, result) else {
            return;
        };
        let peer = choice.peer().to_string();
        if let Some(want) = step.get("expect").and_then(Value::as_str) {
            assert_eq!(peer, want, "{ctx}: chose the wrong peer");
        }
        if let Some(any) = step.get("expect_one_of") {
            let allowed = str_list(Some(any));
            assert!(allowed.contains(&peer), "{ctx}: {peer} not in {allowed:?}");
        }
        match step.get("hold").and_then(Value::as_str) {
            Some(name) => {
                self.finished.remove(name);
                self.held.insert(name.to_owned(), choice);
            }
            None => choice.finish(step_outcome(step), None),
        }
    }

    fn choose_many(&mut self, ctx: &str, step: &Value) {
        let count = step["count"].as_u64().expect("count") as usize;
        let timeout = step.get("timeout_ms").and_then(Value::as_u64);
        let mut got = Vec::with_capacity(count);
        for i in 0..count {
            let mut r = Request::new();
            if let Some(ms) = timeout {
                r = r.with_timeout(Duration::from_millis(ms));
            }
            let choice = self
                .list()
                .choose(&r)
                .unwrap_or_else(|e| panic!("{ctx}: choose #{i} failed: {e}"));
            got.push(choice.peer().to_string());
            choice.finish(step_outcome(step), None);
        }
        if let Some(want) = step.get("expect") {
            assert_eq!(got, str_list(Some(want)), "{ctx}: order");
        }
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for p in &got {
            *counts.entry(p.clone()).or_default() += 1;
        }
        if let Some(want) = step.get("expect_counts").and_then(Value::as_object) {
            let want: BTreeMap<String, u64> = want
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
                .collect();
            assert_eq!(counts, want, "{ctx}: counts");
        }
        if let Some(only) = step.get("expect_only") {
            let only = str_list(Some(only));
            for p in counts.keys() {
                assert!(only.contains(p), "{ctx}: chose {p}, not in {only:?}");
            }
        }
        if let Some(all) = step.get("expect_all") {
            let all = str_list(Some(all));
            for p in counts.keys() {
                assert!(all.contains(p), "{ctx}: chose {p}, not in {all:?}");
            }
            for p in &all {
                assert!(
                    counts.contains_key(p),
                    "{ctx}: never chose {p} ({counts:?})"
                );
            }
        }
    }

    fn list_backends(&self, ctx: &str, step: &Value) {
        let got = serde_json::to_value(self.list().list_backends()).unwrap();
        let got = got.as_array().expect("backends array");
        let want = step["expect"].as_array().expect("expect array");
        assert_eq!(got.len(), want.len(), "{ctx}: backend count in {got:?}");
        for (g, w) in got.iter().zip(want) {
            for (k, v) in w.as_object().expect("backend object") {
                assert_eq!(&g[k], v, "{ctx}: backend field {k} in {g}");
            }
        }
    }

    fn introspect(&self, ctx: &str, step: &Value) {
        let got = serde_json::to_value(self.list().introspect()).unwrap();
        let want = step["expect"].as_object().expect("expect object");
        for (key, value) in want {
            if key == "peers" {
                let got_peers = got["peers"].as_array().unwrap();
                let want_peers = value.as_array().expect("peers array");
                assert_eq!(
                    got_peers.len(),
                    want_peers.len(),
                    "{ctx}: peer count in {got}"
                );
                for (g, w) in got_peers.iter().zip(want_peers) {
                    for (k, v) in w.as_object().expect("peer object") {
                        assert_eq!(&g[k], v, "{ctx}: peer field {k} in {g}");
                    }
                }
            } else {
                assert_eq!(&got[key], value, "{ctx}: field {key} in {got}");
            }
        }
    }

    fn step(&mut self, ctx: &str, step: &Value) {
        let op = step["op"].as_str().expect("op");
        let ctx = &format!("{}: {ctx} ({op})", self.file);
        match op {
            "new" => self.new_list(ctx, step),
            "update" => {
                let adds: Vec<PeerSpec> = step
                    .get("add")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|x| match x {
                                Value::String(s) => PeerSpec::new(s.as_str()),
                                Value::Object(o) => {
                                    let mut spec = PeerSpec::weighted(
                                        o["id"].as_str().expect("id"),
                                        o.get("weight").and_then(Value::as_u64).unwrap_or(1) as u32,
                                    );
                                    if let Some(z) = o.get("zone").and_then(Value::as_str) {
                                        spec = spec.with_zone(z);
                                    }
                                    if let Some(p) = o.get("priority").and_then(Value::as_u64) {
                                        spec = spec.with_priority(p as u32);
                                    }
                                    spec
                                }
                                other => panic!("{ctx}: bad addition {other}"),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let removes = str_list(step.get("remove"));
                check_result(ctx, step, self.list().update(adds, removes));
            }
            "start" => {
                check_result(ctx, step, self.list().start());
            }
            "stop" => {
                check_result(ctx, step, self.list().stop());
            }
            "set_status" => {
                let peer = step["peer"].as_str().expect("peer");
                let status: ConnectionStatus = step["status"].as_str().unwrap().parse().unwrap();
                let transport = self.transport.as_ref().expect("set_status needs scripted");
                let sub = transport
                    .subscribers
                    .lock()
                    .unwrap()
                    .get(peer)
                    .cloned()
                    .unwrap_or_else(|| panic!("{ctx}: {peer} was never retained"));
                let accepted = sub.set_status(status);
                if let Some(want) = step.get("accepted").and_then(Value::as_bool) {
                    assert_eq!(accepted, want, "{ctx}: accepted");
                }
            }
            "choose" => self.choose(ctx, step),
            "choose_many" => self.choose_many(ctx, step),
            "finish" => {
                let name = step["choice"].as_str().expect("choice");
                if self.finished.contains(name) {
                    let result: peerlb::Result<()> = Err(peerlb::Error::already_finished(name));
                    check_result(ctx, step, result);
                    return;
                }
                // A load report that does not parse or holds a bad number fails the finish,
                // which leaves the choice pending.
                let load = match step.get("load").map(load_report).transpose() {
                    Ok(load) => load,
                    Err(e) => {
                        check_result::<()>(ctx, step, Err(e));
                        return;
                    }
                };
                let choice = self
                    .held
                    .remove(name)
                    .unwrap_or_else(|| panic!("{ctx}: no held choice {name}"));
                self.finished.insert(name.to_owned());
                let outcome: Outcome = step
                    .get("outcome")
                    .and_then(Value::as_str)
                    .unwrap_or("ok")
                    .parse()
                    .unwrap();
                let latency = step
                    .get("latency_ms")
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis);
                choice.finish_with_load(outcome, latency, load.as_ref());
                check_result(ctx, step, Ok(()));
            }
            "drop" => {
                let name = step["choice"].as_str().expect("choice");
                drop(self.held.remove(name).expect("held choice"));
                self.finished.insert(name.to_owned());
            }
            "list_backends" => self.list_backends(ctx, step),
            "metrics" => {
                let text = self.list().metrics();
                let lines: Vec<&str> = text.lines().collect();
                for want in str_list(step.get("contains")) {
                    assert!(
                        lines.contains(&want.as_str()),
                        "{ctx}: no line {want:?} in\n{text}"
                    );
                }
                for not in str_list(step.get("absent")) {
                    assert!(!text.contains(&not), "{ctx}: {not:?} in\n{text}");
                }
                if step.get("empty").and_then(Value::as_bool) == Some(true) {
                    assert_eq!(text, "", "{ctx}: metrics should be empty");
                }
            }
            "introspect" => self.introspect(ctx, step),
            "advance" => {
                let ms = step["ms"].as_u64().expect("ms");
                let clock = self.clock.as_ref().expect("advance needs clock: manual");
                clock.advance(Duration::from_millis(ms));
            }
            "admin" => self.admin(ctx, step),
            "events" => {
                let got: Vec<String> = std::mem::take(&mut *self.events.lock().unwrap());
                assert_eq!(got, str_list(step.get("expect")), "{ctx}: events");
            }
            "retry_budget" => {
                let clock = match &self.clock {
                    Some(m) => Clock::from(m.clone()),
                    None => Clock::real(),
                };
                let budget = RetryBudget::new(
                    step.get("ratio").and_then(Value::as_f64).unwrap_or(0.2),
                    step.get("min_per_sec")
                        .and_then(Value::as_u64)
                        .unwrap_or(10) as u32,
                    Duration::from_millis(
                        step.get("ttl_ms").and_then(Value::as_u64).unwrap_or(10_000),
                    ),
                    clock,
                );
                self.budget = check_result(ctx, step, budget);
            }
            "retry" => self.retry(ctx, step),
            "request" => self.request(ctx, step),
            "open_session" => self.open_session(ctx, step),
            "session_failover" => self.session_failover(ctx, step),
            "session_ok" => {
                let result = self.session(ctx, step).ok();
                check_result(ctx, step, result);
            }
            "session_decline" => {
                let session = self.session(ctx, step);
                let e = session.decline(reason(step));
                check_remote(ctx, step, &e);
                let want = step["expect_code"].as_str().expect("expect_code");
                assert_eq!(e.code().as_str(), want, "{ctx}: decline's error ({e})");
            }
            "session_close" => {
                let result = self.session(ctx, step).close();
                check_result(ctx, step, result);
            }
            "session_drop" => {
                let name = step["session"].as_str().expect("session");
                drop(self.sessions.remove(name).expect("a held session"));
            }
            "session_check" => {
                let s = self.session(ctx, step);
                let got = serde_json::json!({
                    "id": s.id(),
                    "peer": s.peer().as_str(),
                    "bound": s.is_bound(),
                    "open": s.is_open(),
                    "failover_requested": s.failover_requested(),
                });
                for (k, v) in step["expect"].as_object().expect("expect object") {
                    assert_eq!(&got[k], v, "{ctx}: session field {k} in {got}");
                }
            }
            "session_events" => {
                let got: Vec<String> = std::mem::take(&mut *self.session_events.lock().unwrap());
                assert_eq!(got, str_list(step.get("expect")), "{ctx}: session events");
            }
            "add_backend" => {
                let data = match &step["data"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let got: Value = serde_json::from_str(&self.list().add_backend(&data))
                    .expect("add_backend answers JSON");
                for (k, v) in step["expect"].as_object().expect("expect object") {
                    assert_eq!(&got[k], v, "{ctx}: add_backend field {k} in {got}");
                }
            }
            "backend_config" => {
                let peer = step["peer"].as_str().expect("peer");
                let result = self.list().backend_config(peer);
                if let Some(json) = check_result(ctx, step, result) {
                    let got: Value = serde_json::from_str(&json).expect("config is JSON");
                    for (k, v) in step["expect"].as_object().expect("expect object") {
                        assert_eq!(&got[k], v, "{ctx}: backend_config field {k} in {got}");
                    }
                }
            }
            "queries" => self.queries(ctx, step),
            "transport_calls" => {
                let transport = self.transport.as_ref().expect("needs scripted transport");
                let got: Vec<String> = std::mem::take(&mut *transport.calls.lock().unwrap());
                assert_eq!(got, str_list(step.get("expect")), "{ctx}: transport calls");
            }
            other => panic!("{ctx}: unknown op {other:?}"),
        }
    }
}

/// A step's `load`: ORCA text, or an object of `requests_in_flight`, `utilization`, `qps`
/// and `eps` (each optional).
fn load_report(value: &Value) -> peerlb::Result<LoadReport> {
    match value {
        Value::String(text) => text.parse(),
        Value::Object(o) => {
            let number = |k: &str| o.get(k).map(|v| v.as_f64().expect("a number"));
            let report = LoadReport {
                requests_in_flight: number("requests_in_flight")
                    .map(LoadReport::in_flight_from_f64)
                    .transpose()?,
                utilization: number("utilization"),
                qps: number("qps"),
                eps: number("eps"),
            };
            report.validate()?;
            Ok(report)
        }
        other => panic!("a load report is text or an object, got {other}"),
    }
}

impl Run {
    fn admin(&mut self, ctx: &str, step: &Value) {
        let peer = step["peer"].as_str().expect("peer");
        let list = self.list();
        let result = match step["action"].as_str().expect("action") {
            "disable" => list.disable(peer),
            "enable" => list.enable(peer),
            "reset" => list.reset(peer),
            "delete" => list.delete(peer),
            "failover" => list.failover(peer),
            other => panic!("{ctx}: unknown admin action {other:?}"),
        };
        let got = match &result {
            Ok(AdminResult::Success) => "success",
            Ok(AdminResult::NoActionRequired) => "no-action-required",
            Err(_) => "failed",
        };
        // The balancer's numbers: 1 success, 3 no action required, 4 failed.
        let number = peerlb::admin::result_number(&result);
        let want_number = match got {
            "success" => 1,
            "no-action-required" => 3,
            _ => 4,
        };
        assert_eq!(number, want_number, "{ctx}: admin result number");
        let want = step
            .get("expect")
            .and_then(Value::as_str)
            .unwrap_or("success");
        assert_eq!(got, want, "{ctx}: admin result ({result:?})");
        if let (Err(e), Some(code)) = (&result, step.get("error").and_then(Value::as_str)) {
            assert_eq!(e.code().as_str(), code, "{ctx}: admin error code ({e})");
        }
    }

    /// `retry`: the scripted attempts (`"ok"`, `"failure:<msg>"`, `"declined:<msg>"`) are
    /// played in order by the function under retry.
    fn retry(&mut self, ctx: &str, step: &Value) {
        let mut policy = RetryPolicy::new(
            step.get("max_attempts")
                .and_then(Value::as_u64)
                .unwrap_or(3) as u32,
        );
        if let Some(ms) = step.get("timeout_ms").and_then(Value::as_u64) {
            policy = policy.timeout(Duration::from_millis(ms));
        }
        if let Some(budget) = &self.budget {
            policy = policy.budget(budget.clone());
        }
        let script = str_list(step.get("attempts"));
        let mut peers = Vec::new();
        let key = step
            .get("shard_key")
            .and_then(Value::as_str)
            .map(str::as_bytes);
        let mut request = Request::new();
        if let Some(k) = key {
            request = request.with_shard_key(k);
        }
        let has_codes = script.iter().any(|a| a.contains('@'));
        let result = if has_codes {
            // Attempts that give the remote system's code go through the step-by-step API.
            let mut retry = Retry::new(&policy);
            loop {
                let choice = match retry.choose(self.list(), &request) {
                    Ok(c) => c,
                    Err(e) => break Err(e),
                };
                let i = peers.len();
                peers.push(choice.peer().to_string());
                let (kind, code, msg) = scripted_attempt(ctx, &script, i);
                match kind {
                    "ok" => {
                        retry.succeeded(choice, None);
                        break Ok(());
                    }
                    "failure" => retry.failed_with_code(choice, msg, code, None),
                    _ => break Err(retry.declined_with_code(choice, msg, code, None)),
                }
            }
        } else {
            peerlb::retry::call(self.list(), &request, &policy, |peer| {
                let i = peers.len();
                peers.push(peer.to_string());
                let (kind, _, msg) = scripted_attempt(ctx, &script, i);
                match kind {
                    "ok" => Ok(()),
                    "failure" => Err(Attempt::Failure(msg)),
                    _ => Err(Attempt::Declined(msg)),
                }
            })
        };
        if let Err(e) = &result {
            check_remote(ctx, step, e);
        }
        if let Some(want) = step.get("expect_peers") {
            assert_eq!(peers, str_list(Some(want)), "{ctx}: attempts' peers");
        }
        if let Some(n) = step.get("expect_attempts").and_then(Value::as_u64) {
            assert_eq!(peers.len() as u64, n, "{ctx}: attempts");
        }
        if step.get("expect_distinct").and_then(Value::as_bool) == Some(true) {
            let mut d = peers.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), peers.len(), "{ctx}: peers not distinct: {peers:?}");
        }
        if let (Err(e), Some(msg)) = (&result, step.get("message").and_then(Value::as_str)) {
            assert_eq!(e.to_string(), msg, "{ctx}: retry error message");
        }
        check_result(ctx, step, result);
    }
}

impl Run {
    /// `request`: one request under a request rule, its attempts' results scripted.
    fn request(&mut self, ctx: &str, step: &Value) {
        use peerlb::request_rule::{AttemptResult, RequestCall, RequestInfo, RequestRule};
        let rule = step.get("rule").cloned().unwrap_or(Value::Null);
        let mut spec = Vec::new();
        for key in ["failure_statuses", "max_attempts", "retry_any_method"] {
            match rule.get(key) {
                Some(Value::String(v)) => spec.push(format!("{key}={v}")),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => spec.push(format!("{key}={v}")),
                _ => {}
            }
        }
        let mut budget = None;
        match rule.get("budget") {
            Some(Value::Bool(false)) => spec.push("budget=off".into()),
            Some(Value::String(s)) if s == "shared" => {
                budget = Some(self.budget.clone().expect("a `retry_budget` step first"))
            }
            None => {}
            Some(other) => panic!("{ctx}: bad rule budget {other}"),
        }
        let Some(rule) = check_result(ctx, step, RequestRule::from_spec(&spec.join("&"), budget))
        else {
            return;
        };
        let method = step.get("method").and_then(Value::as_str).unwrap_or("GET");
        let replayable = step
            .get("body_replayable")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let idempotent = step.get("idempotent").and_then(Value::as_bool);
        let mut call = RequestCall::new(&rule, RequestInfo::new(method, replayable, idempotent));
        let attempts = step
            .get("attempts")
            .and_then(Value::as_array)
            .expect("`attempts`");
        for (i, attempt) in attempts.iter().enumerate() {
            let actx = format!("{ctx}: attempt {}", i + 1);
            let choice = call
                .choose(self.list(), &Request::new())
                .unwrap_or_else(|e| panic!("{actx}: choose failed: {e}"));
            if let Some(want) = attempt.get("expect").and_then(Value::as_str) {
                assert_eq!(choice.peer().as_str(), want, "{actx}: peer");
            }
            let result = match (attempt.get("status"), attempt.get("result")) {
                (Some(code), None) => {
                    AttemptResult::status(code.as_u64().expect("a status") as u16).unwrap()
                }
                (None, Some(Value::String(r))) => match r.as_str() {
                    "connect-failed" => AttemptResult::ConnectFailed,
                    "reset" => AttemptResult::Reset,
                    "timed-out" => AttemptResult::TimedOut,
                    "failed" => AttemptResult::Failed,
                    other => panic!("{actx}: bad result {other:?}"),
                },
                _ => panic!("{actx}: give `status` or `result`"),
            };
            let classified = attempt
                .get("classified")
                .and_then(Value::as_str)
                .map(|o| o.parse::<Outcome>().expect("an outcome"));
            let report = call.report(choice, result, classified);
            let last = i + 1 == attempts.len();
            let want_retry = attempt
                .get("retry")
                .and_then(Value::as_bool)
                .unwrap_or(!last);
            assert_eq!(report.retry, want_retry, "{actx}: retry");
            if let Some(want) = attempt.get("stopped") {
                assert_eq!(
                    report.stopped.map(|s| s.as_str()),
                    want.as_str(),
                    "{actx}: stop reason"
                );
            }
        }
        assert_eq!(call.attempts() as usize, attempts.len(), "{ctx}: attempts");
    }
}

/// A scripted retry attempt: `"ok"`, `"failure:<msg>"`, `"declined:<msg>"`, or with the
/// remote system's code, `"failure@503:<msg>"`, `"declined@401:<msg>"`.
fn scripted_attempt(ctx: &str, script: &[String], i: usize) -> (&'static str, Option<i64>, String) {
    let what = script
        .get(i)
        .unwrap_or_else(|| panic!("{ctx}: attempt {} is not scripted", i + 1));
    if what == "ok" {
        return ("ok", None, String::new());
    }
    let (head, msg) = what
        .split_once(':')
        .unwrap_or_else(|| panic!("{ctx}: bad scripted attempt {what:?}"));
    let (kind, code) = match head.split_once('@') {
        Some((k, c)) => (k, Some(c.parse().expect("a numeric code"))),
        None => (head, None),
    };
    let kind = match kind {
        "failure" => "failure",
        "declined" => "declined",
        _ => panic!("{ctx}: bad scripted attempt {what:?}"),
    };
    (kind, code, msg.to_owned())
}

/// Checks `expect_peer` and `expect_remote_code` (null: no code) against an error.
fn check_remote(ctx: &str, step: &Value, error: &Error) {
    if let Some(peer) = step.get("expect_peer") {
        assert_eq!(error.peer(), peer.as_str(), "{ctx}: error's peer ({error})");
    }
    if let Some(code) = step.get("expect_remote_code") {
        assert_eq!(
            error.remote_code(),
            code.as_i64(),
            "{ctx}: error's remote code ({error})"
        );
    }
}

/// The reason of a session step: `reason` (default "") and `remote_code`.
fn reason(step: &Value) -> Reason {
    let text = step.get("reason").and_then(Value::as_str).unwrap_or("");
    match step.get("remote_code").and_then(Value::as_i64) {
        Some(code) => Reason::new(text).with_code(code),
        None => Reason::new(text),
    }
}

fn request_of(step: &Value) -> Request<'_> {
    let mut r = Request::new();
    if let Some(ms) = step.get("timeout_ms").and_then(Value::as_u64) {
        r = r.with_timeout(Duration::from_millis(ms));
    }
    if let Some(k) = step.get("shard_key").and_then(Value::as_str) {
        r = r.with_shard_key(k.as_bytes());
    }
    r
}

impl Run {
    fn session(&self, ctx: &str, step: &Value) -> &Session {
        let name = step["session"].as_str().expect("session");
        self.sessions
            .get(name)
            .unwrap_or_else(|| panic!("{ctx}: no session {name}"))
    }

    fn open_session(&mut self, ctx: &str, step: &Value) {
        let result = self.list().open_session(&request_of(step));
        let Some(session) = check_result(ctx, step, result) else {
            return;
        };
        let peer = session.peer().to_string();
        if let Some(want) = step.get("expect").and_then(Value::as_str) {
            assert_eq!(peer, want, "{ctx}: session opened on the wrong peer");
        }
        if let Some(any) = step.get("expect_one_of") {
            let allowed = str_list(Some(any));
            assert!(allowed.contains(&peer), "{ctx}: {peer} not in {allowed:?}");
        }
        if let Some(id) = step.get("expect_id").and_then(Value::as_u64) {
            assert_eq!(session.id(), id, "{ctx}: session id");
        }
        let name = step["name"].as_str().expect("name");
        self.sessions.insert(name.to_owned(), session);
    }

    fn session_failover(&mut self, ctx: &str, step: &Value) {
        let session = self.session(ctx, step);
        let result = session.failover_with(reason(step), &request_of(step));
        if let Err(e) = &result {
            check_remote(ctx, step, e);
        }
        let Some(peer) = check_result(ctx, step, result) else {
            return;
        };
        assert_eq!(
            peer,
            session.peer(),
            "{ctx}: failover's answer and session.peer()"
        );
        if let Some(want) = step.get("expect").and_then(Value::as_str) {
            assert_eq!(peer.as_str(), want, "{ctx}: failed over to the wrong peer");
        }
        if let Some(any) = step.get("expect_one_of") {
            let allowed = str_list(Some(any));
            assert!(
                allowed.iter().any(|p| p == peer.as_str()),
                "{ctx}: {peer} not in {allowed:?}"
            );
        }
    }

    fn queries(&self, ctx: &str, step: &Value) {
        let list = self.list();
        if let Some(n) = step.get("capacity").and_then(Value::as_u64) {
            assert_eq!(list.capacity() as u64, n, "{ctx}: capacity");
        }
        for (key, query) in [
            (
                "available",
                PeerList::available as fn(&PeerList, &str) -> bool,
            ),
            ("uninitialized", PeerList::uninitialized),
        ] {
            if let Some(map) = step.get(key).and_then(Value::as_object) {
                for (id, want) in map {
                    assert_eq!(Value::Bool(query(list, id)), *want, "{ctx}: {key}({id})");
                }
            }
        }
        for (key, count) in [
            (
                "num_available",
                PeerList::num_available as fn(&PeerList) -> usize,
            ),
            ("num_unavailable", PeerList::num_unavailable),
            ("num_uninitialized", PeerList::num_uninitialized),
        ] {
            if let Some(n) = step.get(key).and_then(Value::as_u64) {
                assert_eq!(count(list) as u64, n, "{ctx}: {key}");
            }
        }
        if let Some(want) = step.get("peers") {
            let got: Vec<String> = list.peers().iter().map(|p| p.to_string()).collect();
            assert_eq!(got, str_list(Some(want)), "{ctx}: peers()");
        }
    }
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/conformance exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn conformance_scenarios() {
    let files = scenario_files();
    let mut passed = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let scenario: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: bad JSON: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut run = Run {
            file: file.clone(),
            list: None,
            transport: None,
            held: HashMap::new(),
            finished: HashSet::new(),
            clock: None,
            events: Arc::new(Mutex::new(Vec::new())),
            subscription: None,
            budget: None,
            sessions: HashMap::new(),
            session_events: Arc::new(Mutex::new(Vec::new())),
            session_subscription: None,
        };
        for (i, step) in scenario["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .enumerate()
        {
            run.step(&format!("step {i}"), step);
        }
        passed += 1;
    }
    println!("conformance: {passed} scenarios passed");
    assert!(
        passed >= 40,
        "expected at least 40 scenarios, found {passed}"
    );
}
