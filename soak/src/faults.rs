//! The seeded fault schedule: every kind of fault once early on (so a short run sees them
//! all), then random ones, every 1–2.5 s, each undone after a while. Limits keep the
//! documented guarantees in reach: at most two backends failing (dead or 5xx) at once and
//! one disabled, so at least three of the six file-fed backends stay healthy, the panic
//! floor (50 %) is never crossed and every failing backend can be ejected (max 50 %).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

/// Backends fed to the lists by the peers file (the others come from DNS).
pub const FILE_BACKENDS: usize = 6;
/// All backends.
pub const BACKENDS: usize = 8;

/// What a fault does, step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Kill(usize),
    Restart(usize),
    Slow(usize),
    Fail(usize),
    Heal(usize),
    DnsServFail,
    DnsEmpty,
    DnsAnswer,
    BadFile,
    GoodFile,
    Disable(usize),
    Enable(usize),
    Reset(usize),
    ThrowingOn,
    ThrowingOff,
    Stop(usize),
    Start(usize),
}

/// The kinds of fault, as the report counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Kill,
    Slow,
    Fail5xx,
    DnsFlap,
    BadFileLine,
    AdminDisableEnable,
    AdminReset,
    ThrowingSubscribers,
    StopStart,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Kill,
        Kind::Slow,
        Kind::Fail5xx,
        Kind::DnsFlap,
        Kind::BadFileLine,
        Kind::AdminDisableEnable,
        Kind::AdminReset,
        Kind::ThrowingSubscribers,
        Kind::StopStart,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Kill => "backend killed and restarted",
            Kind::Slow => "backend slow (200 ms)",
            Kind::Fail5xx => "backend answering 503",
            Kind::DnsFlap => "DNS flap (SERVFAIL, empty, back)",
            Kind::BadFileLine => "peers file rewritten with a bad line",
            Kind::AdminDisableEnable => "admin disable, then enable",
            Kind::AdminReset => "admin reset",
            Kind::ThrowingSubscribers => "subscribers throwing",
            Kind::StopStart => "list stopped and started",
        }
    }
}

/// A fault in progress: what it holds, and its remaining steps.
#[derive(Debug)]
struct Active {
    kind: Kind,
    backend: Option<usize>,
    steps: Vec<(Duration, Action)>,
}

pub struct Schedule {
    rng: StdRng,
    surfaces: usize,
    /// Kinds still to be shown once, in order.
    first_round: Vec<Kind>,
    next_fault: Duration,
    active: Vec<Active>,
    /// Every fault started, with when.
    pub injected: Vec<(Duration, Kind, String)>,
}

impl Schedule {
    pub fn new(seed: u64, surfaces: usize, first_at: Duration) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut first_round = Kind::ALL.to_vec();
        first_round.shuffle(&mut rng);
        Schedule {
            rng,
            surfaces,
            first_round,
            next_fault: first_at,
            active: Vec::new(),
            injected: Vec::new(),
        }
    }

    /// Whether faults are still being undone.
    pub fn busy(&self) -> bool {
        !self.active.is_empty()
    }

    /// The actions due at `now`; new faults start only while `starting` holds.
    pub fn due(&mut self, now: Duration, starting: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        for a in &mut self.active {
            while a.steps.first().is_some_and(|(at, _)| *at <= now) {
                actions.push(a.steps.remove(0).1);
            }
        }
        self.active.retain(|a| !a.steps.is_empty());
        if starting && now >= self.next_fault {
            if let Some(mut active) = self.pick(now) {
                while active.steps.first().is_some_and(|(at, _)| *at <= now) {
                    actions.push(active.steps.remove(0).1);
                }
                if !active.steps.is_empty() {
                    self.active.push(active);
                }
            }
            let gap = self.rng.random_range(1000..2500);
            self.next_fault = now + Duration::from_millis(gap);
        }
        actions
    }

    fn failing(&self) -> usize {
        self.active
            .iter()
            .filter(|a| matches!(a.kind, Kind::Kill | Kind::Fail5xx))
            .count()
    }

    fn holds(&self, kind: Kind) -> bool {
        self.active.iter().any(|a| a.kind == kind)
    }

    fn backend_free(&self, b: usize) -> bool {
        !self.active.iter().any(|a| a.backend == Some(b))
    }

    fn allowed(&self, kind: Kind) -> bool {
        match kind {
            Kind::Kill | Kind::Fail5xx => self.failing() < 2,
            Kind::AdminDisableEnable | Kind::ThrowingSubscribers => {
                !self.holds(Kind::AdminDisableEnable) && !self.holds(Kind::ThrowingSubscribers)
            }
            Kind::DnsFlap | Kind::BadFileLine | Kind::StopStart => !self.holds(kind),
            Kind::Slow | Kind::AdminReset => true,
        }
    }

    fn free_backend(&mut self, among: usize) -> Option<usize> {
        let free: Vec<usize> = (0..among).filter(|b| self.backend_free(*b)).collect();
        free.choose(&mut self.rng).copied()
    }

    fn pick(&mut self, now: Duration) -> Option<Active> {
        let kind = match self.first_round.iter().position(|k| self.allowed(*k)) {
            Some(i) => self.first_round.remove(i),
            None if !self.first_round.is_empty() => return None,
            None => {
                let allowed: Vec<Kind> =
                    Kind::ALL.into_iter().filter(|k| self.allowed(*k)).collect();
                *allowed.choose(&mut self.rng)?
            }
        };
        let ms =
            |rng: &mut StdRng, lo: u64, hi: u64| Duration::from_millis(rng.random_range(lo..hi));
        let (backend, steps, what) = match kind {
            Kind::Kill => {
                let b = self.free_backend(BACKENDS)?;
                let d = ms(&mut self.rng, 2000, 6000);
                (
                    Some(b),
                    vec![(now, Action::Kill(b)), (now + d, Action::Restart(b))],
                    format!("backend {b} for {d:?}"),
                )
            }
            Kind::Slow | Kind::Fail5xx => {
                let b = self.free_backend(BACKENDS)?;
                let d = ms(&mut self.rng, 2000, 5000);
                let start = if kind == Kind::Slow {
                    Action::Slow(b)
                } else {
                    Action::Fail(b)
                };
                (
                    Some(b),
                    vec![(now, start), (now + d, Action::Heal(b))],
                    format!("backend {b} for {d:?}"),
                )
            }
            Kind::DnsFlap => {
                let servfail = ms(&mut self.rng, 1000, 2500);
                let empty = ms(&mut self.rng, 1500, 3000);
                (
                    None,
                    vec![
                        (now, Action::DnsServFail),
                        (now + servfail, Action::DnsEmpty),
                        (now + servfail + empty, Action::DnsAnswer),
                    ],
                    format!("SERVFAIL {servfail:?}, empty {empty:?}"),
                )
            }
            Kind::BadFileLine => {
                let d = ms(&mut self.rng, 1000, 3000);
                (
                    None,
                    vec![(now, Action::BadFile), (now + d, Action::GoodFile)],
                    format!("for {d:?}"),
                )
            }
            Kind::AdminDisableEnable => {
                let b = self.free_backend(FILE_BACKENDS)?;
                let d = ms(&mut self.rng, 1000, 4000);
                (
                    Some(b),
                    vec![(now, Action::Disable(b)), (now + d, Action::Enable(b))],
                    format!("backend {b} for {d:?}"),
                )
            }
            Kind::AdminReset => {
                let b = self.rng.random_range(0..FILE_BACKENDS);
                (None, vec![(now, Action::Reset(b))], format!("backend {b}"))
            }
            Kind::ThrowingSubscribers => {
                // With an admin disable and enable inside, so that there are events to throw
                // on.
                let b = self.free_backend(FILE_BACKENDS)?;
                let d = ms(&mut self.rng, 2000, 5000);
                let half = Duration::from_millis(500);
                (
                    Some(b),
                    vec![
                        (now, Action::ThrowingOn),
                        (now + half, Action::Disable(b)),
                        (now + half * 2, Action::Enable(b)),
                        (now + d, Action::ThrowingOff),
                    ],
                    format!("for {d:?}, backend {b} disabled and enabled meanwhile"),
                )
            }
            Kind::StopStart => {
                let s = self.rng.random_range(0..self.surfaces);
                let d = ms(&mut self.rng, 300, 1200);
                (
                    None,
                    vec![(now, Action::Stop(s)), (now + d, Action::Start(s))],
                    format!("surface {s} for {d:?}"),
                )
            }
        };
        self.injected.push((now, kind, what));
        Some(Active {
            kind,
            backend,
            steps,
        })
    }
}
