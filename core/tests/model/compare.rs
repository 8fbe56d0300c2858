//! Runs operations on a real list and on the reference model side by side, and says where
//! they first disagree.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlb::{
    AdminResult, Choice, Clock, EjectionPolicy, Error, ListOptions, ManualClock, PeerId, PeerList,
    Request, Subscriber, Subscription, Transport,
};

use super::ops::{id, Admin, Op, Setup, Wait, FAILS_RELEASE, FAILS_RETAIN};
use super::reference::{Model, Returned};

/// The scripted transport of the conformance format: fails to retain [`FAILS_RETAIN`],
/// fails to release [`FAILS_RELEASE`], and reports the setup's initial status from inside
/// `retain`.
struct Scripted {
    initial: Option<peerlb::ConnectionStatus>,
    subscribers: Mutex<HashMap<String, Subscriber>>,
}

impl Transport for Scripted {
    fn retain(&self, id: &PeerId, subscriber: &Subscriber) -> Result<(), String> {
        if id.as_str() == FAILS_RETAIN {
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
        if id.as_str() == FAILS_RELEASE {
            return Err(format!("scripted failure releasing {id}"));
        }
        Ok(())
    }

    fn name(&self) -> &str {
        "scripted"
    }
}

/// Where and how the list and the model first disagreed.
#[derive(Debug)]
pub struct Disagreement {
    /// Index of the operation (`None`: making the list).
    pub step: Option<usize>,
    pub message: String,
}

/// What the real list did at each step (the scenario writer records it).
#[derive(Debug, Default, Clone)]
pub struct Trace {
    /// Per operation: the events in the order the list delivered them (`"<kind> <peer>"`).
    pub events: Vec<Vec<String>>,
    /// Per operation: the peer a `choose` returned.
    pub chosen: Vec<Option<String>>,
    /// Per operation: the peers the model allowed a `choose` to return.
    pub eligible: Vec<Vec<String>>,
    /// Per operation: whether a `set_status` had a subscriber to report through.
    pub subscribed: Vec<bool>,
    /// Per operation: what the model says it returns.
    pub want: Vec<Returned>,
    /// Per operation: the model's events, in its order.
    pub model_events: Vec<Vec<String>>,
    /// Per operation: the model's introspection of the list, and of its peers.
    pub list: Vec<serde_json::Value>,
    pub peers: Vec<Vec<serde_json::Value>>,
}

struct Held {
    choice: Choice,
    incarnation: usize,
}

/// A list and its model.
pub struct Run {
    list: PeerList,
    transport: Arc<Scripted>,
    clock: ManualClock,
    pub model: Model,
    held: Vec<Held>,
    events: Arc<Mutex<Vec<String>>>,
    _subscription: Subscription,
    /// The model's incarnation of each id's latest successful retain.
    latest: HashMap<String, usize>,
    pub trace: Trace,
}

/// The real list's result as the model's kind of value.
fn returned(result: Result<(), Error>) -> Returned {
    match result {
        Ok(()) => Returned::Ok,
        Err(e) => error(&e),
    }
}

fn error(e: &Error) -> Returned {
    let code = e.code().as_str().to_owned();
    let parts = if e.errors().len() > 1 {
        e.errors()
            .iter()
            .map(|x| x.code().as_str().to_owned())
            .collect()
    } else {
        Vec::new()
    };
    Returned::Err(code, parts)
}

/// The list options of a setup.
pub fn options(setup: &Setup, clock: &ManualClock) -> Result<ListOptions, Error> {
    let policy = match setup.ejection {
        None => None,
        Some(e) => {
            let mut p = EjectionPolicy::default();
            p.set("failures", &e.failures.to_string())?;
            p.set("base_ms", &e.base_ms.to_string())?;
            p.set("max_ms", &e.max_ms.to_string())?;
            p.set("max_percent", &e.max_percent.to_string())?;
            p.set("panic_percent", &e.panic_percent.to_string())?;
            Some(p)
        }
    };
    ListOptions::default()
        .shuffle(false)
        .seed(7)
        .fail_fast(setup.fail_fast)
        .clock(Clock::from(clock.clone()))
        .ejection(policy)
        .strategy_name(setup.strategy)
}

impl Run {
    pub fn new(setup: &Setup) -> Result<Run, Disagreement> {
        let clock = ManualClock::new();
        let transport = Arc::new(Scripted {
            initial: setup.initial.map(|s| s.to_core()),
            subscribers: Mutex::new(HashMap::new()),
        });
        let made = options(setup, &clock)
            .map(|o| o.transport(transport.clone()))
            .and_then(PeerList::new);
        let list = made.map_err(|e| Disagreement {
            step: None,
            message: format!("the list could not be made: {e}"),
        })?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let log = events.clone();
        let subscription = list.subscribe(move |e| log.lock().unwrap().push(e.to_string()));
        Ok(Run {
            list,
            transport,
            clock,
            model: Model::new(setup.clone()),
            held: Vec::new(),
            events,
            _subscription: subscription,
            latest: HashMap::new(),
            trace: Trace::default(),
        })
    }

    /// Applies one operation to both and compares everything observable.
    pub fn step(&mut self, op: &Op) -> Result<(), String> {
        let mut chosen = None;
        let mut eligible = Vec::new();
        let applied = self.apply(op, &mut chosen, &mut eligible);
        for p in &self.model.peers {
            if let Some(inc) = p.incarnation {
                self.latest.insert(p.id.clone(), inc);
            }
        }
        let events = std::mem::take(&mut *self.events.lock().unwrap());
        let want_events = self.model.take_events();
        let model_log = std::mem::take(&mut self.model.log);
        self.trace.events.push(events.clone());
        self.trace.model_events.push(model_log);
        self.trace.chosen.push(chosen);
        self.trace.subscribed.push(matches!(op, Op::SetStatus(i, _)
            if self.transport.subscribers.lock().unwrap().contains_key(id(*i))));
        self.trace.eligible.push(eligible);
        self.trace.list.push(self.model.expected_list());
        self.trace.peers.push(self.model.expected_peers());
        let (got, want) = match applied {
            Ok(pair) => pair,
            Err(message) => {
                self.trace.want.push(Returned::Ok);
                return Err(message);
            }
        };
        self.trace.want.push(want.clone());
        if got != want {
            return Err(format!("returned {got:?}; the model says {want:?}"));
        }
        let mut per_peer: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in events {
            let (kind, peer) = e.split_once(' ').expect("<kind> <peer>");
            per_peer
                .entry(peer.to_owned())
                .or_default()
                .push(kind.to_owned());
        }
        if per_peer != want_events {
            return Err(format!(
                "events per peer {per_peer:?}; the model says {want_events:?}"
            ));
        }
        self.compare_introspection()
    }

    /// Applies `op` to the list and the model: what each returned.
    fn apply(
        &mut self,
        op: &Op,
        chosen: &mut Option<String>,
        eligible: &mut Vec<String>,
    ) -> Result<(Returned, Returned), String> {
        Ok(match op {
            Op::Start => (returned(self.list.start()), self.model.start()),
            Op::Stop => (returned(self.list.stop()), self.model.stop()),
            Op::Update { add, remove } => {
                let add: Vec<(&str, u32)> = add.iter().map(|(i, w)| (id(*i), *w)).collect();
                let remove: Vec<&str> = remove.iter().map(|i| id(*i)).collect();
                let specs: Vec<peerlb::PeerSpec> = add
                    .iter()
                    .map(|(i, w)| peerlb::PeerSpec::weighted(*i, *w))
                    .collect();
                let got = returned(self.list.update(specs, remove.iter().copied()));
                (got, self.model.update(&add, &remove))
            }
            Op::SetStatus(i, status) => {
                let peer = id(*i);
                let sub = self
                    .transport
                    .subscribers
                    .lock()
                    .unwrap()
                    .get(peer)
                    .cloned();
                let got = sub.map(|s| s.set_status(status.to_core()));
                let want = self
                    .latest
                    .get(peer)
                    .map(|inc| self.model.set_status(peer, *status, *inc));
                if got != want {
                    return Err(format!("set_status accepted: list {got:?}, model {want:?}"));
                }
                (Returned::Ok, Returned::Ok)
            }
            Op::Choose {
                hold,
                outcome,
                wait,
                key,
            } => {
                let mut request = Request::new();
                if *wait == Wait::Zero {
                    request = request.with_timeout(Duration::ZERO);
                }
                let key = [*key];
                request = request.with_shard_key(&key);
                *eligible = self.model.eligible();
                match self.list.choose(&request) {
                    Ok(choice) => {
                        let peer = choice.peer().to_string();
                        if !eligible.contains(&peer) {
                            return Err(format!(
                                "chose {peer:?}; the model allows only {eligible:?}"
                            ));
                        }
                        self.check_fewest_pending(&peer, eligible)?;
                        let incarnation = self.model.chose(&peer);
                        *chosen = Some(peer);
                        if *hold {
                            self.held.push(Held {
                                choice,
                                incarnation,
                            });
                        } else {
                            choice.finish(outcome.to_core(), None);
                            self.model.finish(incarnation, *outcome);
                        }
                        (Returned::Ok, Returned::Ok)
                    }
                    Err(e) => {
                        let want = if eligible.is_empty() {
                            Returned::err(self.model.choose_error(*wait == Wait::Zero))
                        } else {
                            Returned::Ok
                        };
                        (error(&e), want)
                    }
                }
            }
            Op::Finish {
                held,
                outcome,
                latency_ms,
            } => {
                if !self.held.is_empty() {
                    let h = self.held.remove(*held as usize % self.held.len());
                    let latency = latency_ms.map(|ms| Duration::from_millis(ms.into()));
                    h.choice.finish(outcome.to_core(), latency);
                    self.model.finish(h.incarnation, *outcome);
                }
                (Returned::Ok, Returned::Ok)
            }
            Op::Drop { held } => {
                if !self.held.is_empty() {
                    let h = self.held.remove(*held as usize % self.held.len());
                    drop(h.choice);
                    self.model
                        .finish(h.incarnation, super::ops::Outcome::Cancelled);
                }
                (Returned::Ok, Returned::Ok)
            }
            Op::Advance(ms) => {
                self.clock.advance(Duration::from_millis((*ms).into()));
                self.model.advance((*ms).into());
                (Returned::Ok, Returned::Ok)
            }
            Op::Admin(action, i) => {
                let peer = id(*i);
                let result = match action {
                    Admin::Disable => self.list.disable(peer),
                    Admin::Enable => self.list.enable(peer),
                    Admin::Reset => self.list.reset(peer),
                    Admin::Delete => self.list.delete(peer),
                };
                let got = match result {
                    Ok(AdminResult::Success) => Returned::Admin("success"),
                    Ok(AdminResult::NoActionRequired) => Returned::Admin("no-action-required"),
                    Err(e) => error(&e),
                };
                (got, self.model.admin(*action, peer))
            }
        })
    }

    fn check_fewest_pending(&self, peer: &str, eligible: &[String]) -> Result<(), String> {
        if self.model.setup.strategy != "fewest-pending" {
            return Ok(());
        }
        let pending = |id: &str| {
            let p = self.model.peers.iter().find(|p| p.id == id).unwrap();
            self.model.incarnations[p.incarnation.unwrap()].pending
        };
        let least = eligible.iter().map(|id| pending(id)).min().unwrap();
        if pending(peer) != least {
            return Err(format!(
                "fewest-pending chose {peer:?} with {} pending; the least is {least}",
                pending(peer)
            ));
        }
        Ok(())
    }

    fn compare_introspection(&self) -> Result<(), String> {
        let got = serde_json::to_value(self.list.introspect()).unwrap();
        let want = self.model.expected_list();
        for (key, value) in want.as_object().unwrap() {
            if &got[key] != value {
                return Err(format!(
                    "introspect {key} = {}; the model says {value}",
                    got[key]
                ));
            }
        }
        let got_peers = got["peers"].as_array().unwrap();
        let want_peers = self.model.expected_peers();
        let ids = |v: &[serde_json::Value]| -> Vec<String> {
            v.iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect()
        };
        if ids(got_peers) != ids(&want_peers) {
            return Err(format!(
                "introspect peers {:?}; the model says {:?}",
                ids(got_peers),
                ids(&want_peers)
            ));
        }
        for (g, w) in got_peers.iter().zip(&want_peers) {
            for (key, value) in w.as_object().unwrap() {
                if &g[key] != value {
                    return Err(format!(
                        "introspect {}.{key} = {}; the model says {value}",
                        w["id"], g[key]
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Runs `ops` on a fresh list and its model; the first disagreement, if any.
pub fn run(setup: &Setup, ops: &[Op]) -> Result<Trace, Disagreement> {
    let mut run = Run::new(setup)?;
    for (i, op) in ops.iter().enumerate() {
        run.step(op).map_err(|message| Disagreement {
            step: Some(i),
            message: format!("after {op}: {message}"),
        })?;
    }
    Ok(run.trace)
}
