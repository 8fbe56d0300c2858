//! The reference model: the list's documented semantics written as plainly as possible
//! (README "Concepts" and "Failures", `tests/conformance/README.md`, the rustdoc of
//! `PeerList`, `ejection` and `events`), with no strategy inside: it knows which peers may
//! be chosen, not which one will be.

use std::collections::{BTreeMap, BTreeSet};

use super::ops::{Admin, Ejection, Outcome, Setup, Status, FAILS_RELEASE, FAILS_RETAIN};

/// What an operation returned: success, or an error code (with the codes of a combined
/// error's parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    Ok,
    /// `success` or `no-action-required` of an admin action.
    Admin(&'static str),
    Err(String, Vec<String>),
}

impl Returned {
    pub fn err(code: &str) -> Returned {
        Returned::Err(code.to_owned(), Vec::new())
    }

    /// One error as is; several together, with the code they share or `multiple-errors`
    /// ("several failures of one kind keep that kind's code").
    pub fn combine(mut codes: Vec<&str>) -> Returned {
        match codes.len() {
            0 => Returned::Ok,
            1 => Returned::err(codes.pop().unwrap()),
            _ => {
                let code = if codes.iter().all(|c| *c == codes[0]) {
                    codes[0]
                } else {
                    "multiple-errors"
                };
                Returned::Err(code.into(), codes.into_iter().map(str::to_owned).collect())
            }
        }
    }
}

/// One retained incarnation of a peer (a peer removed and added again, or retained again
/// after a stop, is a new one with fresh counters).
#[derive(Debug, Clone, Default)]
pub struct Incarnation {
    pub pending: usize,
    pub chosen: u64,
    pub failures: u64,
    pub streak: u32,
}

/// One peer of the list.
#[derive(Debug, Clone)]
pub struct PeerModel {
    pub id: String,
    pub weight: u32,
    /// The current incarnation, while retained.
    pub incarnation: Option<usize>,
    /// The status the list acts on (what the transport last reported while retained).
    pub status: Status,
    /// Ejected until this time on the manual clock (ms), if ejected.
    pub ejected_until: Option<u64>,
    pub ejections: u32,
}

/// The model of one list.
#[derive(Debug, Clone)]
pub struct Model {
    pub setup: Setup,
    pub running: bool,
    /// Peers in the order they were added.
    pub peers: Vec<PeerModel>,
    pub disabled: BTreeSet<String>,
    pub incarnations: Vec<Incarnation>,
    /// Incarnation of every held choice, in the order they were made.
    pub held: Vec<usize>,
    pub now_ms: u64,
    /// Events since the last time they were taken, per peer.
    pub events: BTreeMap<String, Vec<String>>,
    /// The same events in the model's order (`"<kind> <peer>"`), for scenarios.
    pub log: Vec<String>,
}

impl Model {
    pub fn new(setup: Setup) -> Model {
        Model {
            setup,
            running: false,
            peers: Vec::new(),
            disabled: BTreeSet::new(),
            incarnations: Vec::new(),
            held: Vec::new(),
            now_ms: 0,
            events: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn event(&mut self, kind: &str, id: &str) {
        self.log.push(format!("{kind} {id}"));
        self.events
            .entry(id.to_owned())
            .or_default()
            .push(kind.to_owned());
    }

    pub fn take_events(&mut self) -> BTreeMap<String, Vec<String>> {
        std::mem::take(&mut self.events)
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.peers.iter().position(|p| p.id == id)
    }

    fn ejected_count(&self) -> usize {
        self.peers
            .iter()
            .filter(|p| p.ejected_until.is_some())
            .count()
    }

    /// Retained, available, enabled, not ejected.
    fn healthy(&self, p: &PeerModel) -> bool {
        p.incarnation.is_some()
            && p.status == Status::Available
            && !self.disabled.contains(&p.id)
            && p.ejected_until.is_none()
    }

    /// Whether the panic floor is active: fewer than `panic_percent` of the retained,
    /// enabled peers are healthy.
    pub fn panic(&self) -> bool {
        let Some(e) = self.setup.ejection else {
            return false;
        };
        if !self.running {
            return false;
        }
        let enabled = self
            .peers
            .iter()
            .filter(|p| p.incarnation.is_some() && !self.disabled.contains(&p.id))
            .count();
        let healthy = self.peers.iter().filter(|p| self.healthy(p)).count();
        enabled > 0 && healthy * 100 < enabled * e.panic_percent as usize
    }

    /// The peers a `choose` may return now.
    pub fn eligible(&self) -> Vec<String> {
        let panic = self.panic();
        self.peers
            .iter()
            .filter(|p| {
                self.healthy(p)
                    || (panic
                        && p.incarnation.is_some()
                        && p.status == Status::Available
                        && !self.disabled.contains(&p.id))
            })
            .map(|p| p.id.clone())
            .collect()
    }

    fn retain(&mut self, i: usize) -> Result<(), &'static str> {
        let id = self.peers[i].id.clone();
        if id == FAILS_RETAIN {
            // Left out of the list; subscribers hear it leave.
            self.peers.remove(i);
            self.event("removed", &id);
            return Err("transport-failed");
        }
        self.incarnations.push(Incarnation::default());
        let p = &mut self.peers[i];
        p.incarnation = Some(self.incarnations.len() - 1);
        p.status = Status::Unavailable;
        if let Some(s) = self.setup.initial {
            self.report(i, s);
        }
        Ok(())
    }

    /// The transport reports `status` for retained peer `i`.
    fn report(&mut self, i: usize, status: Status) {
        let p = &mut self.peers[i];
        let before = std::mem::replace(&mut p.status, status);
        let id = p.id.clone();
        if status == Status::Available && before != Status::Available {
            self.event("available", &id);
        } else if before == Status::Available && status != Status::Available {
            self.event("unavailable", &id);
        }
    }

    /// Removes peer `i`; the transport's release error, if any.
    fn remove(&mut self, i: usize) -> Option<&'static str> {
        let p = self.peers.remove(i);
        self.event("removed", &p.id);
        (p.incarnation.is_some() && p.id == FAILS_RELEASE).then_some("transport-failed")
    }

    pub fn start(&mut self) -> Returned {
        if self.running {
            return Returned::err("already-started");
        }
        self.running = true;
        let mut errors = Vec::new();
        let mut i = 0;
        while i < self.peers.len() {
            match self.retain(i) {
                Ok(()) => i += 1,
                Err(e) => errors.push(e),
            }
        }
        Returned::combine(errors)
    }

    pub fn stop(&mut self) -> Returned {
        if !self.running {
            return Returned::err("not-started");
        }
        self.running = false;
        let mut errors = Vec::new();
        for i in 0..self.peers.len() {
            let p = &mut self.peers[i];
            if p.incarnation.take().is_none() {
                continue;
            }
            let was_available = p.status == Status::Available;
            p.status = Status::Unavailable;
            let id = p.id.clone();
            if was_available {
                self.event("unavailable", &id);
            }
            if id == FAILS_RELEASE {
                errors.push("transport-failed");
            }
        }
        Returned::combine(errors)
    }

    pub fn update(&mut self, add: &[(&str, u32)], remove: &[&str]) -> Returned {
        let mut errors: Vec<&str> = Vec::new();
        let mut release_errors = Vec::new();
        for id in remove {
            if id.is_empty() {
                errors.push("invalid-argument");
                continue;
            }
            match self.index(id) {
                None => errors.push("peer-not-in-list"),
                Some(i) => release_errors.extend(self.remove(i)),
            }
        }
        for (id, weight) in add {
            if id.is_empty() || *weight == 0 {
                errors.push("invalid-argument");
            }
        }
        let mut added = Vec::new();
        for (id, weight) in add {
            if id.is_empty() || *weight == 0 {
                continue;
            }
            if self.index(id).is_some() {
                errors.push("peer-already-in-list");
                continue;
            }
            self.peers.push(PeerModel {
                id: (*id).to_owned(),
                weight: *weight,
                incarnation: None,
                status: Status::Unavailable,
                ejected_until: None,
                ejections: 0,
            });
            self.event("added", id);
            added.push((*id).to_owned());
        }
        errors.extend(release_errors);
        if self.running {
            for id in added {
                let i = self.index(&id).expect("just added");
                if let Err(e) = self.retain(i) {
                    errors.push(e);
                }
            }
        }
        Returned::combine(errors)
    }

    /// A report through the subscriber of `id`'s latest retain; false when that subscriber
    /// is stale (the peer was removed or the list stopped since).
    pub fn set_status(&mut self, id: &str, status: Status, latest_incarnation: usize) -> bool {
        let Some(i) = self.index(id) else {
            return false;
        };
        if self.peers[i].incarnation != Some(latest_incarnation) {
            return false;
        }
        self.report(i, status);
        true
    }

    /// A `choose` that returned `id`; its incarnation.
    pub fn chose(&mut self, id: &str) -> usize {
        let i = self.index(id).expect("chosen peer is in the list");
        let inc = self.peers[i].incarnation.expect("chosen peer is retained");
        self.incarnations[inc].pending += 1;
        self.incarnations[inc].chosen += 1;
        inc
    }

    /// What a `choose` fails with when nothing is eligible.
    pub fn choose_error(&self, wait_has_deadline: bool) -> &'static str {
        if !self.running {
            "not-started"
        } else if self.setup.fail_fast {
            "no-peer-available"
        } else if !wait_has_deadline {
            "no-deadline"
        } else {
            "timeout"
        }
    }

    /// A request to incarnation `inc` ended with `outcome`.
    pub fn finish(&mut self, inc: usize, outcome: Outcome) {
        let state = &mut self.incarnations[inc];
        state.pending -= 1;
        match outcome {
            Outcome::Ok => state.streak = 0,
            Outcome::Failure => {
                state.failures += 1;
                state.streak += 1;
                if let Some(e) = self.setup.ejection {
                    if state.streak >= e.failures {
                        self.failure_streak(inc, e);
                    }
                }
            }
            Outcome::Declined | Outcome::Cancelled => {}
        }
    }

    /// A run of failures long enough to eject the peer of incarnation `inc`.
    fn failure_streak(&mut self, inc: usize, e: Ejection) {
        if !self.running {
            return;
        }
        let Some(i) = self.peers.iter().position(|p| p.incarnation == Some(inc)) else {
            return;
        };
        let disabled = self.disabled.contains(&self.peers[i].id);
        if self.peers[i].ejected_until.is_some() || disabled {
            self.incarnations[inc].streak = 0;
            return;
        }
        let max = (self.peers.len() * e.max_percent as usize / 100).max(1);
        if self.ejected_count() >= max {
            return; // the streak goes on
        }
        let p = &mut self.peers[i];
        p.ejections += 1;
        let time = (e.base_ms * u64::from(p.ejections)).min(e.max_ms);
        p.ejected_until = Some(self.now_ms + time);
        let id = p.id.clone();
        self.incarnations[inc].streak = 0;
        self.event("ejected", &id);
    }

    /// Ends `i`'s ejection (time over, or an admin reset).
    fn restore(&mut self, i: usize) {
        if self.peers[i].ejected_until.take().is_none() {
            return;
        }
        if let Some(inc) = self.peers[i].incarnation {
            self.incarnations[inc].streak = 0;
        }
        let id = self.peers[i].id.clone();
        self.event("restored", &id);
    }

    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        for i in 0..self.peers.len() {
            if self.peers[i]
                .ejected_until
                .is_some_and(|t| t <= self.now_ms)
            {
                self.restore(i);
            }
        }
    }

    pub fn admin(&mut self, action: Admin, id: &str) -> Returned {
        if id.is_empty() {
            return Returned::err("invalid-argument");
        }
        let at = self.index(id);
        match action {
            Admin::Disable | Admin::Enable => {
                let disable = action == Admin::Disable;
                if at.is_none() {
                    if !disable && self.disabled.remove(id) {
                        return Returned::Admin("success");
                    }
                    return Returned::err("peer-not-in-list");
                }
                let changed = if disable {
                    self.disabled.insert(id.to_owned())
                } else {
                    self.disabled.remove(id)
                };
                if !changed {
                    return Returned::Admin("no-action-required");
                }
                self.event(if disable { "disabled" } else { "enabled" }, id);
                Returned::Admin("success")
            }
            Admin::Reset => {
                let Some(i) = at else {
                    return Returned::err("peer-not-in-list");
                };
                let p = &self.peers[i];
                let streak = p.incarnation.map_or(0, |inc| self.incarnations[inc].streak);
                if p.ejected_until.is_none() && p.ejections == 0 && streak == 0 {
                    return Returned::Admin("no-action-required");
                }
                self.peers[i].ejections = 0;
                if let Some(inc) = self.peers[i].incarnation {
                    self.incarnations[inc].streak = 0;
                }
                self.restore(i);
                Returned::Admin("success")
            }
            Admin::Delete => {
                let forgot = self.disabled.remove(id);
                match at {
                    Some(i) => match self.remove(i) {
                        Some(e) => Returned::err(e),
                        None => Returned::Admin("success"),
                    },
                    None if forgot => Returned::Admin("success"),
                    None => Returned::err("peer-not-in-list"),
                }
            }
        }
    }

    /// What introspection must say about each peer, in the order they were added.
    pub fn expected_peers(&self) -> Vec<serde_json::Value> {
        self.peers
            .iter()
            .map(|p| {
                let inc = p.incarnation.map(|i| &self.incarnations[i]);
                serde_json::json!({
                    "id": p.id,
                    "status": if inc.is_some() { p.status.as_str() } else { "uninitialized" },
                    "pending": inc.map_or(0, |s| s.pending),
                    "weight": p.weight,
                    "admin": if self.disabled.contains(&p.id) { "disabled" } else { "enabled" },
                    "ejected": p.ejected_until.is_some(),
                    "ejected_for_ms": p.ejected_until.map_or(0, |t| t - self.now_ms),
                    "ejections": p.ejections,
                    "consecutive_failures": inc.map_or(0, |s| s.streak),
                    "chosen": inc.map_or(0, |s| s.chosen),
                    "failures": inc.map_or(0, |s| s.failures),
                })
            })
            .collect()
    }

    /// What introspection must say about the list.
    pub fn expected_list(&self) -> serde_json::Value {
        let available = self.eligible().len();
        serde_json::json!({
            "state": if self.running { "running" } else { "idle" },
            "available": available,
            "total": self.peers.len(),
            "panic": self.panic(),
            "ejected": self.ejected_count(),
            "disabled": self.peers.iter().filter(|p| self.disabled.contains(&p.id)).count(),
        })
    }
}
