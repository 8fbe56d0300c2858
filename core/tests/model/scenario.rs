//! Writes a run as a conformance scenario (`tests/conformance/README.md`), with the
//! model's expectations: a disagreement the model-based test finds becomes a scenario that
//! every surface replays.

use serde_json::{json, Value};

use super::compare::{run, Trace};
use super::ops::{id, Op, Setup, Status, Wait, FAILS_RELEASE, FAILS_RETAIN};
use super::reference::Returned;

/// The scenario of `ops` on a list made as `setup`, up to the first disagreement (the
/// step that disagrees included, with what the model says it must do).
pub fn scenario(name: &str, setup: &Setup, ops: &[Op]) -> Value {
    let (trace, last) = match run(setup, ops) {
        Ok(trace) => (trace, ops.len()),
        Err(d) => {
            let mut partial = super::compare::Run::new(setup).expect("the list can be made");
            let upto = d.step.map_or(0, |s| s + 1);
            for op in &ops[..upto] {
                let _ = partial.step(op);
            }
            (partial.trace, upto)
        }
    };
    let mut steps = vec![new_step(setup)];
    let mut held: Vec<String> = Vec::new();
    let mut names = 0;
    for (i, op) in ops[..last].iter().enumerate() {
        steps.extend(op_steps(op, i, &trace, &mut held, &mut names));
        let events = events_of(&trace, i);
        steps.push(json!({"op": "events", "expect": events}));
        let mut expect = trace.list[i].clone();
        expect["peers"] = Value::Array(trace.peers[i].clone());
        steps.push(json!({"op": "introspect", "expect": expect}));
    }
    json!({
        "name": name,
        "description": "found by the model-based test (core/tests/model_based.rs): the list and the reference model of its documented semantics disagreed on this sequence",
        "steps": steps,
    })
}

fn new_step(setup: &Setup) -> Value {
    let ejection = match setup.ejection {
        None => Value::Bool(false),
        Some(e) => json!({
            "failures": e.failures,
            "base_ms": e.base_ms,
            "max_ms": e.max_ms,
            "max_percent": e.max_percent,
            "panic_percent": e.panic_percent,
        }),
    };
    json!({
        "op": "new",
        "strategy": setup.strategy,
        "shuffle": false,
        "seed": 7,
        "fail_fast": setup.fail_fast,
        "clock": "manual",
        "ejection": ejection,
        "transport": {
            "kind": "scripted",
            "initial_status": setup.initial.map(Status::as_str),
            "fail_retain": [FAILS_RETAIN],
            "fail_release": [FAILS_RELEASE],
        },
    })
}

/// The model's events at step `i`: the list's order when they agree peer by peer, else
/// the model's own.
fn events_of(trace: &Trace, i: usize) -> Vec<String> {
    let sorted = |v: &[String]| {
        let mut per_peer: Vec<(String, usize, String)> = v
            .iter()
            .enumerate()
            .map(|(n, e)| {
                let (kind, peer) = e.split_once(' ').unwrap();
                (peer.to_owned(), n, kind.to_owned())
            })
            .collect();
        per_peer.sort();
        per_peer
            .into_iter()
            .map(|(p, _, k)| (p, k))
            .collect::<Vec<_>>()
    };
    if sorted(&trace.events[i]) == sorted(&trace.model_events[i]) {
        trace.events[i].clone()
    } else {
        trace.model_events[i].clone()
    }
}

fn with_error(mut step: Value, want: &Returned) -> Value {
    if let Returned::Err(code, parts) = want {
        step["error"] = json!(code);
        if !parts.is_empty() {
            step["errors"] = json!(parts);
        }
    }
    step
}

fn op_steps(
    op: &Op,
    i: usize,
    trace: &Trace,
    held: &mut Vec<String>,
    names: &mut usize,
) -> Vec<Value> {
    let want = &trace.want[i];
    match op {
        Op::Start => vec![with_error(json!({"op": "start"}), want)],
        Op::Stop => vec![with_error(json!({"op": "stop"}), want)],
        Op::Update { add, remove } => {
            let add: Vec<Value> = add
                .iter()
                .map(|(p, w)| json!({"id": id(*p), "weight": w}))
                .collect();
            let remove: Vec<&str> = remove.iter().map(|p| id(*p)).collect();
            vec![with_error(
                json!({"op": "update", "add": add, "remove": remove}),
                want,
            )]
        }
        Op::SetStatus(p, status) => {
            // Only reports through a subscriber the transport holds are replayable.
            if trace.subscribed[i] {
                vec![json!({"op": "set_status", "peer": id(*p), "status": status.as_str()})]
            } else {
                Vec::new()
            }
        }
        Op::Choose {
            hold,
            outcome,
            wait,
            key,
        } => {
            let mut step = json!({
                "op": "choose",
                "shard_key": format!("{key:02x}"),
                "outcome": outcome.as_str(),
            });
            if *wait == Wait::Zero {
                step["timeout_ms"] = json!(0);
            }
            if *want == Returned::Ok {
                step["expect_one_of"] = json!(trace.eligible[i]);
                if *hold {
                    let name = format!("c{names}");
                    *names += 1;
                    step["hold"] = json!(name);
                    held.push(name);
                }
            }
            vec![with_error(step, want)]
        }
        Op::Finish {
            held: n,
            outcome,
            latency_ms,
        } => {
            if held.is_empty() {
                return Vec::new();
            }
            let name = held.remove(*n as usize % held.len());
            let mut step = json!({"op": "finish", "choice": name, "outcome": outcome.as_str()});
            if let Some(ms) = latency_ms {
                step["latency_ms"] = json!(ms);
            }
            vec![step]
        }
        Op::Drop { held: n } => {
            if held.is_empty() {
                return Vec::new();
            }
            let name = held.remove(*n as usize % held.len());
            vec![json!({"op": "drop", "choice": name})]
        }
        Op::Advance(ms) => vec![json!({"op": "advance", "ms": ms})],
        Op::Admin(action, p) => {
            let mut step = json!({"op": "admin", "action": action.as_str(), "peer": id(*p)});
            match want {
                Returned::Admin(result) => step["expect"] = json!(result),
                Returned::Err(code, _) => {
                    step["expect"] = json!("failed");
                    step["error"] = json!(code);
                }
                Returned::Ok => {}
            }
            vec![step]
        }
    }
}
