//! The operations a model-based run applies to a list, and a compact byte encoding of them
//! (what the fuzzer mutates).

use std::fmt;

/// The peer ids operations pick from: five ordinary ones, one the scripted transport fails
/// to retain, one it fails to release, and an invalid (empty) one.
pub const IDS: [&str; 8] = ["a", "b", "c", "d", "e", "bad", "sticky", ""];
/// The id the scripted transport fails to retain.
pub const FAILS_RETAIN: &str = "bad";
/// The id the scripted transport fails to release.
pub const FAILS_RELEASE: &str = "sticky";

/// Strategies a run may use (every kind, some with options).
pub const STRATEGIES: [&str; 12] = [
    "round-robin",
    "random",
    "fewest-pending",
    "two-random-choices",
    "hash-ring",
    "hash-ring:fast?bounded=1.25",
    "maglev?table=251",
    "weighted-round-robin",
    "weighted-round-robin?slow_start_ms=1000",
    "peak-ewma",
    "peak-ewma?choices=all",
    "prequal",
];

/// A connection status a scripted transport reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Available,
    Connecting,
    Unavailable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Available => "available",
            Status::Connecting => "connecting",
            Status::Unavailable => "unavailable",
        }
    }

    pub fn to_core(self) -> peerlb::ConnectionStatus {
        match self {
            Status::Available => peerlb::ConnectionStatus::Available,
            Status::Connecting => peerlb::ConnectionStatus::Connecting,
            Status::Unavailable => peerlb::ConnectionStatus::Unavailable,
        }
    }
}

/// How a finished request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failure,
    Declined,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failure => "failure",
            Outcome::Declined => "declined",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub fn to_core(self) -> peerlb::Outcome {
        match self {
            Outcome::Ok => peerlb::Outcome::Ok,
            Outcome::Failure => peerlb::Outcome::Failure,
            Outcome::Declined => peerlb::Outcome::Declined,
            Outcome::Cancelled => peerlb::Outcome::Cancelled,
        }
    }
}

/// How long a `choose` may wait when no peer is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A deadline that has already come: `timeout` when nothing is available.
    Zero,
    /// No deadline: `no-deadline` when nothing is available.
    None,
}

/// An admin action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    Disable,
    Enable,
    Reset,
    Delete,
}

impl Admin {
    pub fn as_str(self) -> &'static str {
        match self {
            Admin::Disable => "disable",
            Admin::Enable => "enable",
            Admin::Reset => "reset",
            Admin::Delete => "delete",
        }
    }
}

/// The outlier-ejection policy of a run (`None` = off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    pub failures: u32,
    pub base_ms: u64,
    pub max_ms: u64,
    pub max_percent: u32,
    pub panic_percent: u32,
}

/// How the list of a run is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    pub strategy: &'static str,
    pub fail_fast: bool,
    /// What the scripted transport reports from inside `retain` (`None`: nothing).
    pub initial: Option<Status>,
    pub ejection: Option<Ejection>,
}

/// One operation. Ids are indexes into [`IDS`]; held choices are named by their position
/// among the choices still held (modulo how many there are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    Update {
        add: Vec<(u8, u32)>,
        remove: Vec<u8>,
    },
    SetStatus(u8, Status),
    Choose {
        hold: bool,
        outcome: Outcome,
        wait: Wait,
        key: u8,
    },
    Finish {
        held: u8,
        outcome: Outcome,
        latency_ms: Option<u16>,
    },
    Drop {
        held: u8,
    },
    Advance(u32),
    Admin(Admin, u8),
}

pub fn id(i: u8) -> &'static str {
    IDS[i as usize % IDS.len()]
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Start => write!(f, "start"),
            Op::Stop => write!(f, "stop"),
            Op::Update { add, remove } => {
                let add: Vec<String> = add
                    .iter()
                    .map(|(i, w)| format!("{:?}x{w}", id(*i)))
                    .collect();
                let remove: Vec<&str> = remove.iter().map(|i| id(*i)).collect();
                write!(f, "update(add {add:?}, remove {remove:?})")
            }
            Op::SetStatus(i, s) => write!(f, "set_status({:?}, {})", id(*i), s.as_str()),
            Op::Choose {
                hold,
                outcome,
                wait,
                key,
            } => write!(
                f,
                "choose(hold {hold}, outcome {}, wait {wait:?}, key {key})",
                outcome.as_str()
            ),
            Op::Finish {
                held,
                outcome,
                latency_ms,
            } => {
                write!(f, "finish(#{held}, {}, {latency_ms:?})", outcome.as_str())
            }
            Op::Drop { held } => write!(f, "drop(#{held})"),
            Op::Advance(ms) => write!(f, "advance({ms} ms)"),
            Op::Admin(a, i) => write!(f, "{}({:?})", a.as_str(), id(*i)),
        }
    }
}

/// Reads a setup and operations from arbitrary bytes (every input decodes to something;
/// the fuzzer's mutations stay meaningful). The inverse of [`encode`].
pub fn decode(bytes: &[u8]) -> (Setup, Vec<Op>) {
    let mut r = Reader(bytes);
    let strategy = STRATEGIES[r.byte() as usize % STRATEGIES.len()];
    let flags = r.byte();
    let initial = match flags % 4 {
        0 | 1 => Some(Status::Available),
        2 => Some(Status::Connecting),
        _ => None,
    };
    let ejection = if flags & 0x10 != 0 {
        None
    } else {
        let base_ms = 100 * u64::from(1 + r.byte() % 10);
        Some(Ejection {
            failures: 1 + u32::from(r.byte() % 4),
            base_ms,
            max_ms: base_ms * u64::from(1 + r.byte() % 4),
            max_percent: [0, 10, 34, 50, 100][r.byte() as usize % 5],
            panic_percent: [0, 34, 50, 100][r.byte() as usize % 4],
        })
    };
    let setup = Setup {
        strategy,
        fail_fast: flags & 0x20 != 0,
        initial,
        ejection,
    };
    let mut ops = Vec::new();
    while !r.0.is_empty() && ops.len() < 64 {
        let code = r.byte();
        let op = match code % 12 {
            0 => Op::Start,
            1 => Op::Stop,
            2 | 3 => {
                let n = r.byte();
                let add = (0..n % 4)
                    .map(|_| (r.byte() % 8, weight(r.byte())))
                    .collect();
                let remove = (0..(n / 4) % 3).map(|_| r.byte() % 8).collect();
                Op::Update { add, remove }
            }
            4 => Op::SetStatus(r.byte() % 8, status(r.byte())),
            5 | 6 => {
                let b = r.byte();
                Op::Choose {
                    hold: b & 1 != 0,
                    outcome: outcome(b >> 1),
                    wait: if b & 0x40 != 0 {
                        Wait::None
                    } else {
                        Wait::Zero
                    },
                    key: r.byte(),
                }
            }
            7 => {
                let b = r.byte();
                Op::Finish {
                    held: r.byte(),
                    outcome: outcome(b),
                    latency_ms: (b & 0x10 != 0).then(|| u16::from(r.byte())),
                }
            }
            8 => Op::Drop { held: r.byte() },
            9 => Op::Advance(50 * u32::from(r.byte() % 32)),
            _ => {
                let b = r.byte();
                let action =
                    [Admin::Disable, Admin::Enable, Admin::Reset, Admin::Delete][b as usize % 4];
                Op::Admin(action, r.byte() % 8)
            }
        };
        ops.push(op);
    }
    (setup, ops)
}

/// Writes a setup and operations in the form [`decode`] reads.
pub fn encode(setup: &Setup, ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(
        STRATEGIES
            .iter()
            .position(|s| *s == setup.strategy)
            .unwrap_or(0) as u8,
    );
    let mut flags = match setup.initial {
        Some(Status::Available) => 0,
        Some(Status::Connecting) => 2,
        Some(Status::Unavailable) | None => 3,
    };
    if setup.ejection.is_none() {
        flags |= 0x10;
    }
    if setup.fail_fast {
        flags |= 0x20;
    }
    out.push(flags);
    if let Some(e) = setup.ejection {
        let base = (e.base_ms / 100).clamp(1, 10);
        out.push((base - 1) as u8);
        out.push((e.failures.clamp(1, 4) - 1) as u8);
        out.push(((e.max_ms / (base * 100)).clamp(1, 4) - 1) as u8);
        out.push(
            [0, 10, 34, 50, 100]
                .iter()
                .position(|p| *p == e.max_percent)
                .unwrap_or(1) as u8,
        );
        out.push(
            [0, 34, 50, 100]
                .iter()
                .position(|p| *p == e.panic_percent)
                .unwrap_or(2) as u8,
        );
    }
    for op in ops {
        match op {
            Op::Start => out.push(0),
            Op::Stop => out.push(1),
            Op::Update { add, remove } => {
                out.push(2);
                let (a, r) = (add.len().min(3), remove.len().min(2));
                out.push((a + 4 * r) as u8);
                for (i, w) in &add[..a] {
                    out.push(*i);
                    out.push(if *w == 0 { 0 } else { (*w as u8).clamp(1, 3) });
                }
                for i in &remove[..r] {
                    out.push(*i);
                }
            }
            Op::SetStatus(i, s) => {
                out.push(4);
                out.push(*i);
                out.push(match s {
                    Status::Available => 0,
                    Status::Connecting => 1,
                    Status::Unavailable => 2,
                });
            }
            Op::Choose {
                hold,
                outcome,
                wait,
                key,
            } => {
                out.push(5);
                let mut b = u8::from(*hold) | (outcome_code(*outcome) << 1);
                if *wait == Wait::None {
                    b |= 0x40;
                }
                out.push(b);
                out.push(*key);
            }
            Op::Finish {
                held,
                outcome,
                latency_ms,
            } => {
                out.push(7);
                let mut b = outcome_code(*outcome);
                if latency_ms.is_some() {
                    b |= 0x10;
                }
                out.push(b);
                out.push(*held);
                if let Some(l) = latency_ms {
                    out.push((*l).min(255) as u8);
                }
            }
            Op::Drop { held } => {
                out.push(8);
                out.push(*held);
            }
            Op::Advance(ms) => {
                out.push(9);
                out.push(((ms / 50) % 32) as u8);
            }
            Op::Admin(a, i) => {
                out.push(10);
                out.push(match a {
                    Admin::Disable => 0,
                    Admin::Enable => 1,
                    Admin::Reset => 2,
                    Admin::Delete => 3,
                });
                out.push(*i);
            }
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
}

fn weight(b: u8) -> u32 {
    // Mostly 1..=3; now and then 0 (invalid).
    if b == 0 {
        0
    } else {
        1 + u32::from((b - 1) % 3)
    }
}

fn status(b: u8) -> Status {
    match b % 3 {
        0 => Status::Available,
        1 => Status::Connecting,
        _ => Status::Unavailable,
    }
}

fn outcome(b: u8) -> Outcome {
    match b % 4 {
        0 => Outcome::Ok,
        1 => Outcome::Failure,
        2 => Outcome::Declined,
        _ => Outcome::Cancelled,
    }
}

fn outcome_code(o: Outcome) -> u8 {
    match o {
        Outcome::Ok => 0,
        Outcome::Failure => 1,
        Outcome::Declined => 2,
        Outcome::Cancelled => 3,
    }
}
