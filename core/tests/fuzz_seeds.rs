//! The fuzzer's seed corpus (`fuzz/corpus/<target>/seed-*`), made from the conformance
//! scenarios and from the inputs the tests use: every scenario as list operations, the
//! strategy, transport and ejection specs the scenarios and docs name, the peer files of
//! the updater tests, DNS responses like the test DNS server's, and C ABI call scripts.
//!
//! `make fuzz-seeds` (this test with `PEERLB_WRITE_FUZZ_SEEDS=1`) rewrites them; the
//! committed copies are what `make fuzz` and `make test-fuzz` start from. Without the
//! variable the test only checks that every seed can be made.

mod model;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};
use model::ops::{Admin, Ejection, Op, Outcome, Setup, Status, Wait, STRATEGIES};
use serde_json::Value;

/// Named seed inputs of one target.
type Seeds = Vec<(String, Vec<u8>)>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A conformance scenario as the list operations of the fuzzer (what they can express:
/// ids map to the operations' ids by first appearance, timings to the nearest step).
fn scenario_ops(scenario: &Value) -> Option<(Setup, Vec<Op>)> {
    let steps = scenario["steps"].as_array()?;
    let new = steps.iter().find(|s| s["op"] == "new")?;
    let strategy = new["strategy"].as_str().unwrap_or("round-robin");
    let strategy = STRATEGIES
        .iter()
        .find(|s| **s == strategy)
        .or_else(|| {
            STRATEGIES
                .iter()
                .find(|s| s.starts_with(strategy.split(['?', ':']).next().unwrap()))
        })
        .copied()
        .unwrap_or("round-robin");
    let transport = &new["transport"];
    let initial = match transport.get("initial_status") {
        None => Some(Status::Available),
        Some(Value::String(s)) if s == "available" => Some(Status::Available),
        Some(Value::String(s)) if s == "connecting" => Some(Status::Connecting),
        _ => None,
    };
    let nearest = |v: u64, options: &[u32]| -> u32 {
        *options
            .iter()
            .min_by_key(|o| (i64::from(**o) - v as i64).unsigned_abs())
            .unwrap()
    };
    let ejection = match &new["ejection"] {
        Value::Bool(false) => None,
        Value::Object(o) => {
            let get = |k: &str, d: u64| o.get(k).and_then(Value::as_u64).unwrap_or(d);
            let base = (get("base_ms", 1000) / 100).clamp(1, 10) * 100;
            Some(Ejection {
                failures: get("failures", 4).clamp(1, 4) as u32,
                base_ms: base,
                max_ms: (get("max_ms", base * 4) / base).clamp(1, 4) * base,
                max_percent: nearest(get("max_percent", 10), &[0, 10, 34, 50, 100]),
                panic_percent: nearest(get("panic_percent", 50), &[0, 34, 50, 100]),
            })
        }
        _ => Some(Ejection {
            failures: 4,
            base_ms: 1000,
            max_ms: 4000,
            max_percent: 10,
            panic_percent: 50,
        }),
    };
    let setup = Setup {
        strategy,
        fail_fast: new["fail_fast"].as_bool().unwrap_or(false),
        initial,
        ejection,
    };
    let fails = |k: &str| -> Vec<String> {
        transport[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (fail_retain, fail_release) = (fails("fail_retain"), fails("fail_release"));
    let mut ids: HashMap<String, u8> = HashMap::new();
    let mut id = |name: &str| -> u8 {
        if name.is_empty() {
            return 7;
        }
        if fail_retain.iter().any(|f| f == name) {
            return 5;
        }
        if fail_release.iter().any(|f| f == name) {
            return 6;
        }
        let next = ids.len() as u8 % 5;
        *ids.entry(name.to_owned()).or_insert(next)
    };
    let mut held: Vec<String> = Vec::new();
    let mut ops = Vec::new();
    let mut flat: Vec<&Value> = Vec::new();
    for s in steps {
        flat.push(s);
        if let Some(inner) = s["while_waiting"].as_array() {
            flat.extend(inner);
        }
    }
    for s in flat {
        let outcome = |s: &Value| match s["outcome"].as_str().unwrap_or("ok") {
            "failure" => Outcome::Failure,
            "declined" => Outcome::Declined,
            "cancelled" => Outcome::Cancelled,
            _ => Outcome::Ok,
        };
        match s["op"].as_str().unwrap_or("") {
            "update" => {
                let add = s["add"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| match x {
                                Value::String(n) => (id(n), 1),
                                o => (
                                    id(o["id"].as_str().unwrap_or("")),
                                    o["weight"].as_u64().unwrap_or(1).min(3) as u32,
                                ),
                            })
                            .take(3)
                            .collect()
                    })
                    .unwrap_or_default();
                let remove = s["remove"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(&mut id)
                            .take(2)
                            .collect()
                    })
                    .unwrap_or_default();
                ops.push(Op::Update { add, remove });
            }
            "start" => ops.push(Op::Start),
            "stop" => ops.push(Op::Stop),
            "set_status" => {
                let status = match s["status"].as_str().unwrap_or("") {
                    "available" => Status::Available,
                    "connecting" => Status::Connecting,
                    _ => Status::Unavailable,
                };
                ops.push(Op::SetStatus(id(s["peer"].as_str().unwrap_or("")), status));
            }
            "choose" | "choose_many" => {
                let count = s["count"].as_u64().unwrap_or(1).min(20);
                let hold = s["hold"].as_str();
                for _ in 0..count {
                    ops.push(Op::Choose {
                        hold: hold.is_some(),
                        outcome: outcome(s),
                        wait: if s.get("timeout_ms").is_some() {
                            Wait::Zero
                        } else {
                            Wait::None
                        },
                        key: s["shard_key"]
                            .as_str()
                            .map_or(0, |k| k.bytes().fold(0u8, u8::wrapping_add)),
                    });
                }
                if let Some(name) = hold {
                    held.push(name.to_owned());
                }
            }
            "finish" | "drop" => {
                let name = s["choice"].as_str().unwrap_or("");
                if let Some(at) = held.iter().position(|h| h == name) {
                    held.remove(at);
                    ops.push(if s["op"] == "drop" {
                        Op::Drop { held: at as u8 }
                    } else {
                        Op::Finish {
                            held: at as u8,
                            outcome: outcome(s),
                            latency_ms: s["latency_ms"].as_u64().map(|l| l.min(255) as u16),
                        }
                    });
                }
            }
            "advance" => {
                let mut ms = s["ms"].as_u64().unwrap_or(0);
                while ms > 0 {
                    let step = ms.min(1550) / 50 * 50;
                    ops.push(Op::Advance(step.max(50) as u32));
                    ms = ms.saturating_sub(step.max(50));
                }
            }
            "admin" => {
                let action = match s["action"].as_str().unwrap_or("") {
                    "disable" => Admin::Disable,
                    "enable" => Admin::Enable,
                    "reset" => Admin::Reset,
                    _ => Admin::Delete,
                };
                ops.push(Op::Admin(action, id(s["peer"].as_str().unwrap_or(""))));
            }
            _ => {}
        }
    }
    Some((setup, ops))
}

fn list_operation_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = repo().join("tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut seeds = Vec::new();
    for path in files {
        let scenario: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Some((setup, ops)) = scenario_ops(&scenario) {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            seeds.push((stem, model::ops::encode(&setup, &ops)));
        }
    }
    // Longer sequences from a fixed stream of bytes (every byte string decodes).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..20 {
        let bytes: Vec<u8> = (0..160)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (setup, ops) = model::ops::decode(&bytes);
        seeds.push((format!("sequence-{n:02}"), model::ops::encode(&setup, &ops)));
    }
    seeds
}

fn spec_seeds() -> Vec<(String, Vec<u8>)> {
    let specs = [
        "round-robin",
        "random",
        "fewest-pending",
        "two-random-choices",
        "hash-ring",
        "hash-ring:ketama",
        "hash-ring:fast",
        "hash-ring:ketama?bounded=1.25",
        "hash-ring?vnodes=160",
        "hash-ring:fast?vnodes=10000&bounded=100",
        "maglev",
        "maglev?table=251",
        "maglev?table=16777213",
        "weighted-round-robin",
        "weighted-round-robin?slow_start_ms=30000",
        "peak-ewma",
        "peak-ewma?decay_ms=10000&default_rtt_ms=30",
        "peak-ewma?choices=all",
        "peak-ewma?choices=1024",
        "always-available",
        "tcp-probe",
        "tcp-probe?interval_ms=200&timeout_ms=100&unhealthy_threshold=2",
        "tcp-probe?timeout_ms=0",
        "off",
        "default",
        "default?failures=3&base_ms=200",
        "failures=3&base_ms=200",
        "base_ms=5000&max_ms=10",
        "default?max_percent=101",
        "srv",
        "a:80",
        "aaaa:65535",
        "ip:0",
        "hash-ring?bounded=1.25&bounded=1.5",
        "hash-ring?vnodes",
        "maglev?table=250",
        "round-robin?x=1",
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("spec-{i:02}"), s.as_bytes().to_vec()))
        .collect()
}

fn file_seeds() -> Vec<(String, Vec<u8>)> {
    let files = [
        "127.0.0.1:8001\n127.0.0.1:8002\n",
        "# backends\na:1 3\n\nb:2 # the spare\n",
        "[::1]:80 2\n10.0.0.1:443\n",
        "a:1\nnot a peer\n",
        "a:1 0\n",
        "a:1 x\n",
        "a:1\na:1\n",
        "a:1 2 3\n",
        "host:65536\n",
        "[::1:80\n",
        "a:1\r\nb:2\r\n",
        "\u{feff}a:1\n",
    ];
    files
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("file-{i:02}"), s.as_bytes().to_vec()))
        .collect()
}

fn dns_message(answers: Vec<RData>, code: ResponseCode) -> Vec<u8> {
    let name = Name::from_ascii("_http._tcp.backends.test.").unwrap();
    let mut m = Message::new();
    m.set_id(7)
        .set_message_type(MessageType::Response)
        .set_authoritative(true)
        .set_response_code(code);
    for data in answers {
        m.add_answer(Record::from_rdata(name.clone(), 5, data));
    }
    m.to_vec().unwrap()
}

fn framed(kind: u8, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![kind];
    for m in messages {
        out.extend((m.len() as u16).to_be_bytes());
        out.extend(m);
    }
    out
}

fn dns_seeds() -> Vec<(String, Vec<u8>)> {
    let srv = |p, w, port, t: &str| RData::SRV(SRV::new(p, w, port, Name::from_ascii(t).unwrap()));
    let a = |x: u8| RData::A(A::new(127, 0, 0, x));
    let aaaa = RData::AAAA(AAAA::new(0, 0, 0, 0, 0, 0, 0, 1));
    let srv_answer = dns_message(
        vec![
            srv(10, 3, 8001, "a.test."),
            srv(10, 1, 8002, "b.test."),
            srv(20, 5, 8003, "c.test."),
        ],
        ResponseCode::NoError,
    );
    let a_answer = dns_message(vec![a(1), a(2), a(3)], ResponseCode::NoError);
    let empty = dns_message(Vec::new(), ResponseCode::NoError);
    let nx = dns_message(Vec::new(), ResponseCode::NXDomain);
    let servfail = dns_message(Vec::new(), ResponseCode::ServFail);
    let mixed = dns_message(
        vec![a(1), aaaa.clone(), srv(0, 0, 1, ".")],
        ResponseCode::NoError,
    );
    let duplicates = dns_message(
        vec![a(1), a(1), srv(1, 2, 80, "x."), srv(1, 9, 80, "x.")],
        ResponseCode::NoError,
    );
    vec![
        (
            "dns-srv".into(),
            framed(0, std::slice::from_ref(&srv_answer)),
        ),
        (
            "dns-srv-changes".into(),
            framed(0, &[srv_answer.clone(), empty.clone(), srv_answer]),
        ),
        ("dns-a".into(), framed(1, &[a_answer.clone(), nx, a_answer])),
        (
            "dns-aaaa".into(),
            framed(2, &[dns_message(vec![aaaa], ResponseCode::NoError)]),
        ),
        ("dns-ip-mixed".into(), framed(3, &[mixed.clone(), servfail])),
        (
            "dns-srv-mixed".into(),
            framed(0, &[mixed, duplicates.clone()]),
        ),
        ("dns-a-duplicates".into(), framed(1, &[duplicates])),
    ]
}

/// C ABI call scripts (see `fuzz/fuzz_targets/c_abi.rs` for the format).
fn c_abi_seeds() -> Vec<(String, Vec<u8>)> {
    fn s(out: &mut Vec<u8>, text: &[u8]) {
        out.push(text.len() as u8);
        out.extend_from_slice(text);
    }
    let mut list = Vec::new();
    s(&mut list, b"round-robin");
    s(&mut list, b"failures=2&base_ms=100");
    list.extend([0, 0, 0, 0, 0]);
    let mut basic = list.clone();
    // update: add a:1 (weight 1), b:2 (weight 2); remove nothing; arrays given.
    basic.extend([2, 2]);
    s(&mut basic, b"a:1");
    basic.extend([0, 1, 0, 0, 0]);
    s(&mut basic, b"b:2");
    basic.extend([0, 2, 0, 0, 0]);
    basic.extend([0, 0]);
    basic.extend([6, 0]); // start
    basic.push(3); // choose, finish ok
    s(&mut basic, b"key");
    basic.extend([0, 0, 0, 0, 0, 0, 0]);
    basic.extend([4]); // disable a:1
    s(&mut basic, b"a:1");
    basic.extend([0, 0]);
    basic.push(13); // introspect
    let mut bad = list.clone();
    bad.extend([2, 1]);
    s(&mut bad, b"\xff\xfe");
    bad.extend([0, 1, 0, 0, 0, 0, 0]);
    bad.extend([4]);
    s(&mut bad, b"a\0b");
    bad.extend([0xff, 3]);
    bad.extend([12, 0xff, 0xff, 0xff, 0xff]);
    let mut retry = basic.clone();
    retry.push(7);
    retry.extend([3, 10]);
    s(&mut retry, b"boom");
    retry.extend([0, 0]);
    let mut updaters = list.clone();
    updaters.push(8);
    s(&mut updaters, b"peers.txt");
    updaters.push(20);
    updaters.push(9);
    s(&mut updaters, b"_http._tcp.example.");
    s(&mut updaters, b"127.0.0.1:5353");
    updaters.extend([0, 0, 80, 1]);
    updaters.push(10);
    updaters.push(2);
    s(&mut updaters, b"s:1");
    updaters.push(1);
    s(&mut updaters, b"");
    updaters.push(0);
    let mut upstream = list.clone();
    upstream.push(11);
    upstream.push(2);
    s(&mut upstream, b"u:1");
    s(&mut upstream, b"u:2");
    upstream.extend([1, 1]);
    s(&mut upstream, b"u:1");
    upstream.push(0);
    let mut transport = vec![0, 0, 0, 0, 0, 0, 0, 1];
    s(&mut transport, b"tcp-probe?interval_ms=200");
    let mut queries = basic.clone();
    queries.push(16); // available, uninitialized, backend config, failover of a:1
    s(&mut queries, b"a:1");
    queries.push(0);
    queries.push(17); // add a backend from JSON
    s(&mut queries, br#"{"id":"c:3","weight":2}"#);
    queries.push(0);
    queries.push(23); // peers, counts, running, capacity, last error, version
    let mut sessions = basic.clone();
    sessions.push(18); // open, decline, fail over (code 500), ok, read its state; close
    s(&mut sessions, b"k");
    sessions.extend([0, 3]);
    s(&mut sessions, b"moved");
    sessions.extend([0, 0xf4, 1, 0, 0, 1, 1]);
    s(&mut sessions, b"");
    sessions.extend([0, 0, 0, 0, 0, 0, 2]);
    s(&mut sessions, b"");
    sessions.extend([0, 0, 0, 0, 0, 0, 3]);
    sessions.push(19); // subscribers that call back in, then events
    s(&mut sessions, b"e:1");
    let mut codes = basic.clone();
    // A budget on a manual clock (ratio 0.1, 10 per second, 10 s), three attempts: a
    // failure with code 503, a decline with 429; then the clock moves 10 s.
    codes.extend([20, 1, 100, 0, 0, 0, 10, 0, 0, 0, 0x10, 0x27, 0, 0, 3]);
    s(&mut codes, b"boom");
    codes.extend([0xf7, 1, 0, 0, 0]);
    s(&mut codes, b"busy");
    codes.extend([0xad, 1, 0, 0, 1, 0x10, 0x27, 0, 0]);
    let mut clock = list.clone();
    // A list on a manual clock ejecting after one failure: failures, then time moves by a
    // byte, by a u32 and by u64::MAX.
    clock.extend([21, 7, 0, 0, 0, 0]);
    s(&mut clock, b"failures=1&base_ms=100");
    clock.extend([
        5, 1, 0, 50, 1, 1, 0x10, 0x27, 0, 0, 0, 2, 1, 0, 200, 0, 0, 0,
    ]);
    clock.push(22); // an etcd binding, made and freed
    s(&mut clock, b"http://127.0.0.1:2379");
    s(&mut clock, b"/peers/");
    clock.extend([0, 0, 0xe8, 3, 0, 0, 0xe8, 3, 0, 0]);
    vec![
        ("c-queries".into(), queries),
        ("c-sessions".into(), sessions),
        ("c-retry-codes".into(), codes),
        ("c-manual-clock".into(), clock),
        ("c-basic".into(), basic),
        ("c-bad-ids".into(), bad),
        ("c-retry".into(), retry),
        ("c-updaters".into(), updaters),
        ("c-upstream".into(), upstream),
        ("c-transport-spec".into(), transport),
    ]
}

#[test]
fn fuzz_seeds() {
    let targets: Vec<(&str, Seeds)> = vec![
        ("list_operations", list_operation_seeds()),
        ("spec_parsers", spec_seeds()),
        ("file_parser", file_seeds()),
        ("dns_answers", dns_seeds()),
        ("c_abi", c_abi_seeds()),
    ];
    for (target, seeds) in &targets {
        assert!(!seeds.is_empty(), "{target}: no seeds");
    }
    let scenarios = targets[0].1.len() - 20;
    assert!(scenarios >= 40, "only {scenarios} scenarios became seeds");
    // Each seed of list operations runs on the list and the model without a disagreement.
    for (name, bytes) in &targets[0].1 {
        let (setup, ops) = model::ops::decode(bytes);
        if let Err(d) = model::compare::run(&setup, &ops) {
            panic!("seed {name}: {} (step {:?})", d.message, d.step);
        }
    }
    if std::env::var_os("PEERLB_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    for (target, seeds) in targets {
        let dir = repo().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                std::fs::remove_file(path).unwrap();
            }
        }
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
        println!("{target}: {} seeds", seeds.len());
    }
}
