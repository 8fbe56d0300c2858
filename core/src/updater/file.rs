//! The file updater: one peer per line, reloaded when the file changes.
//!
//! Format: `host:port [weight] [zone=Z] [priority=P]` per line (the weight may also be
//! written `weight=N`; `zone` is the peer's locality and `priority` its level, 0 the
//! highest, see [`crate::list::routing`]); `#` starts a comment (whole line or trailing);
//! blank lines are ignored. The file is polled (default every 250 ms, see
//! [`FileUpdater::poll_interval`]) and re-parsed when its bytes change, so edits in place,
//! atomic renames over it and re-creation after deletion are all seen. A missing or
//! unreadable file, or one with a bad line, keeps the last good set and reports a
//! `source-failed` error naming the file (and line).
//!
//! # What is read, and where
//!
//! * **Regular files only.** A FIFO, a device (`/dev/zero`), a socket or a directory is a
//!   `source-failed` error that names the path and what it is. The file is opened without
//!   blocking (`O_NONBLOCK`, so opening a FIFO cannot wait for a writer) and its type is
//!   checked on the opened descriptor (`fstat`), so a path swapped for a FIFO after a check
//!   cannot block a read either.
//! * **A size cap**: [`FileUpdater::max_size`] (default [`DEFAULT_FILE_MAX_SIZE`], 16 MiB);
//!   a bigger file is a `source-failed` error naming the cap, and no more than the cap is
//!   ever read, even from a file that grows while it is read.
//! * **Off the runtime's async workers**: [`Binding::start`] reads once on the calling
//!   thread; the polls read, parse and apply on the runtime's blocking pool, one read at a
//!   time. A read that does not end within [`SLOW_READ`] (a file system that stopped
//!   answering) is reported as `source-failed`, and no new read starts until it ends.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Binding, BoxFuture, Driver, EventCallback, Sink};
use crate::{Error, PeerId, PeerList, PeerSpec, Result};

/// Default interval between two looks at the file.
pub const DEFAULT_FILE_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Default largest file the updater reads: 16 MiB (about 600 000 lines of `host:port`).
pub const DEFAULT_FILE_MAX_SIZE: u64 = 16 << 20;

/// How long a poll waits for one read before it reports the file as not answering (the
/// read goes on; no other starts until it ends).
pub const SLOW_READ: Duration = Duration::from_secs(5);

/// Parses the file format (see the [module docs](self)); `origin` names the source in
/// errors (`origin:line: ...`).
///
/// ```
/// use peerlb::updater::parse_peer_lines;
/// let text = "# backends\na:1 3\n\nb:2 zone=us-east-1b priority=1 # the spare\n";
/// let peers = parse_peer_lines(text, "peers.txt").unwrap();
/// assert_eq!(peers.len(), 2);
/// assert_eq!((peers[0].id.as_str(), peers[0].weight), ("a:1", 3));
/// assert_eq!((peers[1].zone.as_deref(), peers[1].priority), (Some("us-east-1b"), 1));
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
        let mut spec = PeerSpec::new(id);
        let mut seen_keys: Vec<&str> = Vec::new();
        for (position, field) in fields.enumerate() {
            let (key, value) = match field.split_once('=') {
                Some(kv) => kv,
                // A bare second field is the weight (the original format).
                None if position == 0 => ("weight", field),
                None => {
                    return Err(bad(format!(
                        "unexpected {field:?} (want `host:port [weight] [zone=Z] [priority=P]`)"
                    )))
                }
            };
            if seen_keys.contains(&key) {
                return Err(bad(format!("{key} given twice")));
            }
            match key {
                "weight" => match value.parse::<u32>() {
                    Ok(w) if w >= 1 => spec.weight = w,
                    _ => return Err(bad(format!("bad weight {value:?} (want an integer >= 1)"))),
                },
                "zone" => {
                    crate::list::routing::validate_zone(value)
                        .map_err(|e| bad(format!("bad zone: {e}")))?;
                    spec = spec.with_zone(value);
                }
                "priority" => match value.parse::<u32>() {
                    Ok(p) => spec.priority = p,
                    _ => {
                        return Err(bad(format!(
                            "bad priority {value:?} (want an integer >= 0; 0 is the highest)"
                        )))
                    }
                },
                other => {
                    return Err(bad(format!(
                        "unknown field {other:?} (want weight, zone or priority)"
                    )))
                }
            }
            seen_keys.push(key);
        }
        check_host_port(id).map_err(|why| bad(format!("bad peer {id:?}: {why}")))?;
        PeerId::new(id).map_err(|e| bad(e.to_string()))?;
        if !seen.insert(id.to_owned()) {
            return Err(bad(format!("peer {id:?} listed twice")));
        }
        peers.push(spec);
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
/// let binding = FileUpdater::new("/etc/myapp/peers").max_size(1 << 20).bind(&list);
/// binding.start().unwrap(); // reads the file now, then polls it
/// ```
#[derive(Clone)]
pub struct FileUpdater {
    path: PathBuf,
    interval: Duration,
    max_size: u64,
    on_event: Option<EventCallback>,
}

impl FileUpdater {
    /// Follows the file at `path`.
    pub fn new(path: impl AsRef<Path>) -> FileUpdater {
        FileUpdater {
            path: path.as_ref().to_path_buf(),
            interval: DEFAULT_FILE_POLL_INTERVAL,
            max_size: DEFAULT_FILE_MAX_SIZE,
            on_event: None,
        }
    }

    /// How often to look at the file (default 250 ms; at least 1 ms).
    pub fn poll_interval(mut self, interval: Duration) -> FileUpdater {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The largest file to read, in bytes (default [`DEFAULT_FILE_MAX_SIZE`], 16 MiB). A
    /// bigger file is a `source-failed` error naming this limit; the last good set stays.
    ///
    /// ```
    /// use peerlb::{ErrorCode, ListOptions, PeerList};
    /// use peerlb::updater::FileUpdater;
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("peers");
    /// std::fs::write(&path, "10.0.0.1:80\n10.0.0.2:80\n").unwrap();
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// let binding = FileUpdater::new(&path).max_size(16).bind(&list);
    /// binding.start().unwrap();
    /// let err = binding.last_error().unwrap();
    /// assert_eq!(err.code(), ErrorCode::SourceFailed);
    /// assert!(err.to_string().contains("limit of 16 bytes"), "{err}");
    /// ```
    pub fn max_size(mut self, bytes: u64) -> FileUpdater {
        self.max_size = bytes;
        self
    }

    /// Receives [`super::UpdaterEvent`]s (see the [module docs](super)).
    pub fn on_event(mut self, callback: EventCallback) -> FileUpdater {
        self.on_event = Some(callback);
        self
    }

    /// Ties the file to `list`; nothing happens until [`Binding::start`], which reads the
    /// file once on the calling thread (so the list has its peers when `start` returns; a
    /// FIFO or device fails at once instead of blocking) and then polls it on the library
    /// runtime's blocking pool.
    pub fn bind(&self, list: &PeerList) -> Binding {
        Binding::new(
            Arc::new(FileDriver {
                source: Arc::new(Source {
                    path: self.path.clone(),
                    origin: self.path.display().to_string(),
                    max_size: self.max_size,
                }),
                interval: self.interval,
            }),
            list.clone(),
            self.on_event.clone(),
            format!("file:{}", self.path.display()),
        )
    }
}

/// The file to read and its limit.
struct Source {
    path: PathBuf,
    /// The path as errors name it.
    origin: String,
    max_size: u64,
}

struct FileDriver {
    source: Arc<Source>,
    interval: Duration,
}

/// What the last look at the file saw.
#[derive(PartialEq, Eq)]
enum Seen {
    Bytes(Vec<u8>),
    Failed(String),
}

/// What a file that is not a regular file is, for error messages.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading without waiting: on Unix with `O_NONBLOCK` (opening a FIFO
/// returns at once instead of waiting for a writer) and `O_NOCTTY`.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    options.open(path)
}

impl Source {
    /// Reads the whole file, if it is a regular file within the size limit.
    fn read(&self) -> std::result::Result<Vec<u8>, String> {
        let origin = &self.origin;
        let not_regular = |t: std::fs::FileType| {
            format!(
                "{origin}: not a regular file ({}); the file updater reads regular files only",
                kind_of(t)
            )
        };
        // A first look by path names what a socket is (opening one fails with ENXIO).
        if let Ok(meta) = std::fs::metadata(&self.path) {
            if !meta.is_file() {
                return Err(not_regular(meta.file_type()));
            }
        }
        let file =
            open_nonblocking(&self.path).map_err(|e| format!("{origin}: cannot read: {e}"))?;
        // The check that counts is on the opened descriptor (fstat): the path may have
        // been swapped since the look above.
        let meta = file
            .metadata()
            .map_err(|e| format!("{origin}: cannot read: {e}"))?;
        if !meta.is_file() {
            return Err(not_regular(meta.file_type()));
        }
        let max = self.max_size;
        if meta.len() > max {
            return Err(format!(
                "{origin}: {} bytes is over the limit of {max} bytes (FileUpdater::max_size)",
                meta.len()
            ));
        }
        // Never more than the limit, even from a file that grows meanwhile.
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{origin}: cannot read: {e}"))?;
        if bytes.len() as u64 > max {
            return Err(format!(
                "{origin}: more than the limit of {max} bytes (FileUpdater::max_size)"
            ));
        }
        Ok(bytes)
    }
}

/// Reads the file and, when it changed since `last`, applies it or reports the failure.
/// Blocks (file I/O, the list's transport, the event callback): never on an async worker.
fn look(source: &Source, last: &mut Option<Seen>, sink: &Sink) {
    let origin = &source.origin;
    let now = match source.read() {
        Ok(bytes) => Seen::Bytes(bytes),
        Err(message) => Seen::Failed(message),
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
            Ok(text) => match parse_peer_lines(text, origin) {
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
        look(&self.source, &mut last, &sink);
        let source = self.source.clone();
        let interval = self.interval;
        Ok(Some(Box::pin(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate; the file was just read.
            tick.tick().await;
            // The read in progress; it hands `last` back when it ends.
            let mut reading: Option<tokio::task::JoinHandle<Option<Seen>>> = None;
            // Whether the read in progress was reported as too slow.
            let mut reported_slow = false;
            loop {
                tick.tick().await;
                let job = reading.get_or_insert_with(|| {
                    let (source, sink, mut seen) = (source.clone(), sink.clone(), last.take());
                    crate::runtime::spawn_blocking(move || {
                        look(&source, &mut seen, &sink);
                        seen
                    })
                });
                match tokio::time::timeout(SLOW_READ, job).await {
                    Ok(done) => {
                        // A panicked look leaves nothing seen: the next one applies afresh.
                        // So does a slow one that was reported: the next look then clears
                        // the report even if the file did not change.
                        last = if reported_slow {
                            None
                        } else {
                            done.unwrap_or(None)
                        };
                        reading = None;
                        reported_slow = false;
                    }
                    Err(_) => {
                        reported_slow = true;
                        let message = format!(
                            "{}: a read did not end within {SLOW_READ:?} (file system not \
                             answering?); no new read starts until it ends",
                            source.origin
                        );
                        sink.off_worker(move |s| s.fail(Error::SourceFailed(message)))
                            .await;
                    }
                }
            }
        })))
    }
}
