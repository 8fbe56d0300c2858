//! The invariants checked on what the surfaces logged (continuously, as the logs grow, and
//! at the end): events in per-peer order, and no requests to a backend that has been dead
//! longer than its ejection allows. Process-level ones (RSS, open files) are sampled here
//! too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// Reads the lines a surface appended to its log since the last call.
pub struct LogTail {
    file: File,
    offset: u64,
    partial: String,
}

impl LogTail {
    pub fn open(path: &str) -> std::io::Result<LogTail> {
        Ok(LogTail {
            file: File::open(path)?,
            offset: 0,
            partial: String::new(),
        })
    }

    pub fn lines(&mut self) -> Vec<String> {
        let mut buf = String::new();
        if self.file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        if let Ok(n) = self.file.read_to_string(&mut buf) {
            self.offset += n as u64;
        }
        self.partial.push_str(&buf);
        let mut lines: Vec<String> = self.partial.split('\n').map(str::to_owned).collect();
        self.partial = lines.pop().unwrap_or_default();
        lines
    }
}

/// What a peer is, as its events say.
#[derive(Debug, Default, Clone, Copy)]
struct PeerState {
    present: bool,
    available: bool,
    ejected: bool,
    disabled: bool,
}

/// A dead period of one backend: from the kill to the restart.
#[derive(Debug, Clone)]
pub struct Dead {
    pub port: u16,
    pub from_ms: u64,
    pub until_ms: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    attempts: u64,
    admissions: u64,
}

/// The checks of one surface's log.
pub struct SurfaceChecks {
    pub name: String,
    peers: HashMap<String, PeerState>,
    windows: HashMap<(u16, u64), Window>,
    reported: HashSet<(u16, u64)>,
    /// Attempts allowed per admission to a dead backend: the ejection's consecutive
    /// failures plus the requests already in flight on other workers.
    per_admission: u64,
    pub violations: Vec<String>,
    pub events: BTreeMap<String, u64>,
    pub attempts: u64,
    pub failed_attempts: u64,
    /// Dead windows where the list reported panic mode (ejections ignored, as documented).
    pub panic_windows: u64,
}

fn port_of(peer: &str) -> Option<u16> {
    peer.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

impl SurfaceChecks {
    pub fn new(name: &str, failures: u32, workers: usize) -> SurfaceChecks {
        SurfaceChecks {
            name: name.to_owned(),
            peers: HashMap::new(),
            windows: HashMap::new(),
            reported: HashSet::new(),
            per_admission: u64::from(failures) + workers as u64 - 1,
            violations: Vec::new(),
            events: BTreeMap::new(),
            attempts: 0,
            failed_attempts: 0,
            panic_windows: 0,
        }
    }

    fn violation(&mut self, v: String) {
        if self.violations.len() < 50 {
            self.violations.push(v);
        }
    }

    /// Takes log lines in order.
    pub fn take(&mut self, lines: Vec<String>, dead: &[Dead]) {
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["A", t, peer, result] => {
                    self.attempts += 1;
                    if *result != "ok" {
                        self.failed_attempts += 1;
                    }
                    let t: u64 = t.parse().unwrap_or(0);
                    if let Some(key) = window(dead, peer, t) {
                        self.windows.entry(key).or_default().attempts += 1;
                    }
                }
                ["E", t, kind, peer] => {
                    *self.events.entry((*kind).to_owned()).or_default() += 1;
                    self.event(kind, peer);
                    let t: u64 = t.parse().unwrap_or(0);
                    if matches!(*kind, "restored" | "added" | "enabled" | "available") {
                        if let Some(key) = window(dead, peer, t) {
                            self.windows.entry(key).or_default().admissions += 1;
                        }
                    }
                }
                [] | [""] => {}
                _ => self.violation(format!("unreadable log line {line:?}")),
            }
        }
    }

    /// The per-peer order of events: a peer is added before anything else happens to it,
    /// becomes available and unavailable in turn, is restored only after an ejection,
    /// enabled only after being disabled.
    fn event(&mut self, kind: &str, peer: &str) {
        let s = self.peers.entry(peer.to_owned()).or_default();
        let before = *s;
        let ok = match kind {
            "added" => {
                !s.present && {
                    s.present = true;
                    true
                }
            }
            "removed" => {
                s.present && {
                    *s = PeerState {
                        disabled: s.disabled,
                        ..PeerState::default()
                    };
                    true
                }
            }
            "available" => {
                s.present && !s.available && {
                    s.available = true;
                    true
                }
            }
            "unavailable" => {
                s.present && s.available && {
                    s.available = false;
                    true
                }
            }
            "ejected" => {
                s.present && !s.ejected && {
                    s.ejected = true;
                    true
                }
            }
            "restored" => {
                s.ejected && {
                    s.ejected = false;
                    true
                }
            }
            "disabled" => {
                !s.disabled && {
                    s.disabled = true;
                    true
                }
            }
            "enabled" => {
                s.disabled && {
                    s.disabled = false;
                    true
                }
            }
            _ => false,
        };
        if !ok {
            self.violation(format!("event order: {kind} {peer} after {before:?}"));
        }
    }

    /// Checks every dead window so far (`panicked`: the dead windows the list spent in
    /// panic mode).
    pub fn check_dead(&mut self, dead: &[Dead], panicked: &dyn Fn(u16, u64) -> bool) {
        let mut found = Vec::new();
        let mut panics = 0;
        for (&(port, from), w) in &self.windows {
            let allowed = self.per_admission * (1 + w.admissions);
            if w.attempts > allowed {
                if panicked(port, from) {
                    panics += 1;
                    continue;
                }
                if !self.reported.insert((port, from)) {
                    continue;
                }
                let until = dead
                    .iter()
                    .find(|d| d.port == port && d.from_ms == from)
                    .and_then(|d| d.until_ms);
                found.push(format!(
                    "{} attempts to 127.0.0.1:{port} while it was dead ({from}..{until:?}); \
                     ejection allows {allowed} ({} admissions)",
                    w.attempts, w.admissions
                ));
            }
        }
        self.panic_windows = panics;
        for f in found {
            self.violation(f);
        }
    }
}

fn window(dead: &[Dead], peer: &str, t: u64) -> Option<(u16, u64)> {
    let port = port_of(peer)?;
    dead.iter()
        .find(|d| d.port == port && d.from_ms <= t && d.until_ms.map_or(true, |u| t < u))
        .map(|d| (port, d.from_ms))
}

/// RSS (bytes) and open file descriptors of a process.
pub fn sample(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss_kb * 1024, fds))
}
