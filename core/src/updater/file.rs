//! The file updater: one peer per line, reloaded when the file changes.
//!
//! Format: `host:port [weight]` per line; `#` starts a comment (whole line or trailing);
//! blank lines are ignored. The file is polled (default every 250 ms, see
//! [`FileUpdater::poll_interval`]) and re-parsed when its bytes change, so edits in place,
//! atomic renames over it and re-creation after deletion are all seen. A missing or
//! unreadable file, or one with a bad line, keeps the last good set and reports a
//! `source-failed` error naming the file (and line).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Binding, BoxFuture, Driver, EventCallback, Sink};
use crate::{Error, PeerId, PeerList, PeerSpec, Result};

/// Default interval between two looks at the file.
pub const DEFAULT_FILE_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Parses the file format (see the [module docs](self)); `origin` names the source in
/// errors (`origin:line: ...`).
///
/// ```
/// use peerlb::updater::parse_peer_lines;
/// let peers = parse_peer_lines("# backends\na:1 3\n\nb:2 # the spare\n", "peers.txt").unwrap();
/// assert_eq!(peers.len(), 2);
/// assert_eq!((peers[0].id.as_str(), peers[0].weight), ("a:1", 3));
/// let err = parse_peer_lines("a:1\nnot a peer\n", "peers.txt").unwrap_err();
/// assert!(err.to_string().contains("peers.txt:2"));
/// ```
pub fn parse_peer_lines(text: &str, origin: &str) -> Result<Vec<PeerSpec>> {
    let mut peers: Vec<PeerSpec> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let bad = |why: String| Error::SourceFailed(format!("{origin}:{line_no}: {why}"));
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let id = fields.next().unwrap_or_default();
        let weight = match fields.next() {
            None => 1,
            Some(w) => match w.parse::<u32>() {
                Ok(w) if w >= 1 => w,
                _ => return Err(bad(format!("bad weight {w:?} (want an integer >= 1)"))),
            },
        };
        if let Some(extra) = fields.next() {
            return Err(bad(format!(
                "unexpected {extra:?} (want `host:port [weight]`)"
            )));
        }
        check_host_port(id).map_err(|why| bad(format!("bad peer {id:?}: {why}")))?;
        PeerId::new(id).map_err(|e| bad(e.to_string()))?;
        if !seen.insert(id.to_owned()) {
            return Err(bad(format!("peer {id:?} listed twice")));
        }
        peers.push(PeerSpec::weighted(id, weight));
    }
    Ok(peers)
}

/// `host:port` or `[v6]:port` with a port in 1..=65535.
pub(crate) fn check_host_port(id: &str) -> std::result::Result<(), &'static str> {
    let (host, port) = id.rsplit_once(':').ok_or("want host:port")?;
    if host.is_empty() || host == "[]" {
        return Err("empty host");
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("IPv6 addresses go in brackets: [::1]:80");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("port must be 1..=65535"),
    }
}

/// Follows a file of peers (see the [module docs](self)).
///
/// ```no_run
/// use peerlb::{ListOptions, PeerList};
/// use peerlb::updater::FileUpdater;
/// let list = PeerList::new(ListOptions::default()).unwrap();
/// let binding = FileUpdater::new("/etc/myapp/peers").bind(&list);
/// binding.start().unwrap(); // reads the file now, then polls it
/// ```
#[derive(Clone)]
pub struct FileUpdater {
    path: PathBuf,
    interval: Duration,
    on_event: Option<EventCallback>,
}

impl FileUpdater {
    /// Follows the file at `path`.
    pub fn new(path: impl AsRef<Path>) -> FileUpdater {
        FileUpdater {
            path: path.as_ref().to_path_buf(),
            interval: DEFAULT_FILE_POLL_INTERVAL,
            on_event: None,
        }
    }

    /// How often to look at the file (default 250 ms; at least 1 ms).
    pub fn poll_interval(mut self, interval: Duration) -> FileUpdater {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Receives [`super::UpdaterEvent`]s (see the [module docs](super)).
    pub fn on_event(mut self, callback: EventCallback) -> FileUpdater {
        self.on_event = Some(callback);
        self
    }

    /// Ties the file to `list`; nothing happens until [`Binding::start`], which reads the
    /// file once synchronously (so the list has its peers when `start` returns) and then
    /// polls it on the library runtime.
    pub fn bind(&self, list: &PeerList) -> Binding {
        Binding::new(
            Arc::new(FileDriver {
                path: self.path.clone(),
                interval: self.interval,
            }),
            list.clone(),
            self.on_event.clone(),
            format!("file:{}", self.path.display()),
        )
    }
}

struct FileDriver {
    path: PathBuf,
    interval: Duration,
}

/// What the last look at the file saw.
#[derive(PartialEq, Eq)]
enum Seen {
    Bytes(Vec<u8>),
    Failed(String),
}

fn look(path: &Path, last: &mut Option<Seen>, sink: &Sink) {
    let origin = path.display().to_string();
    let now = match std::fs::read(path) {
        Ok(bytes) => Seen::Bytes(bytes),
        Err(e) => Seen::Failed(format!("{origin}: cannot read: {e}")),
    };
    if last.as_ref() == Some(&now) {
        return;
    }
    match &now {
        Seen::Failed(message) => sink.fail(Error::SourceFailed(message.clone())),
        Seen::Bytes(bytes) => match std::str::from_utf8(bytes) {
            Err(e) => sink.fail(Error::SourceFailed(format!(
                "{origin}: not UTF-8 (byte {})",
                e.valid_up_to()
            ))),
            Ok(text) => match parse_peer_lines(text, &origin) {
                Ok(peers) => sink.apply(peers),
                Err(e) => sink.fail(e),
            },
        },
    }
    *last = Some(now);
}

impl Driver for FileDriver {
    fn start(&self, sink: Arc<Sink>) -> Result<Option<BoxFuture<()>>> {
        let mut last = None;
        look(&self.path, &mut last, &sink);
        let path = self.path.clone();
        let interval = self.interval;
        Ok(Some(Box::pin(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; the file was just read
            loop {
                tick.tick().await;
                look(&path, &mut last, &sink);
            }
        })))
    }
}
