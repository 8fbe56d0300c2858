//! The `http-probe` transport: a peer is available while `GET {path}` answers with an
//! expected status (Envoy's HTTP health check).
//!
//! Each probe opens a TCP connection to the peer (`host:port`, names resolved like
//! `tcp-probe`), sends one HTTP/1.1 `GET` with `Host` and `Connection: close` (hyper's
//! client), and reads the response head; the body is not read. Spec:
//!
//! `http-probe?path=/healthz&expect=200-299&host=api.internal&interval_ms=..&timeout_ms=..`
//!
//! | key | default |
//! |---|---|
//! | `path` (starts with `/`, visible ASCII, at most 1024 bytes) | `/` |
//! | `expect` (codes and ranges, comma-separated, in 100..=599, e.g. `200-299,304`) | `200` (Envoy's default) |
//! | `host` (the `Host` header) | the peer id |
//!
//! plus the schedule keys of [`super`].
//!
//! ```
//! use peerlb::probe::HttpProbeOptions;
//! use peerlb::strategy::SpecOptions;
//! let o = HttpProbeOptions::from_spec("http-probe?path=/healthz&expect=200-299,304&interval_ms=200").unwrap();
//! assert_eq!(o.path, "/healthz");
//! assert_eq!(o.expect, [(200, 299), (304, 304)]);
//! assert_eq!(o.to_spec(), "http-probe?path=/healthz&expect=200-299,304&interval_ms=200");
//! assert!(HttpProbeOptions::from_spec("http-probe?path=healthz").is_err());
//! assert!(HttpProbeOptions::from_spec("http-probe?expect=600").is_err());
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONNECTION, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{ProbeResult, ProbeSchedule, ProbeTransport, Prober, SCHEDULE_KEYS};
use crate::error::{Error, Result};
use crate::spec::{unknown_key, SpecOptions};
use crate::transport::Transport;

/// The longest `path` or `host` a spec may give.
const MAX_TEXT: usize = 1024;

/// Options of the `http-probe` transport (see the [module docs](crate::probe)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbeOptions {
    /// Interval, timeout and thresholds.
    pub schedule: ProbeSchedule,
    /// The path requested.
    pub path: String,
    /// Healthy status codes, as inclusive ranges.
    pub expect: Vec<(u16, u16)>,
    /// The `Host` header; `None` sends the peer id.
    pub host: Option<String>,
}

impl Default for HttpProbeOptions {
    fn default() -> Self {
        HttpProbeOptions {
            schedule: ProbeSchedule::default(),
            path: "/".to_owned(),
            expect: vec![(200, 200)],
            host: None,
        }
    }
}

fn visible(key: &str, value: &str) -> Result<()> {
    if value.len() > MAX_TEXT || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidArgument(format!(
            "{key} must be at most {MAX_TEXT} visible ASCII characters, got {value:?}"
        )));
    }
    Ok(())
}

/// Parses `200`, `200-299`, `200-299,304`.
fn parse_expect(value: &str) -> Result<Vec<(u16, u16)>> {
    let bad = || {
        Error::InvalidArgument(format!(
            "expect must be status codes or ranges in 100..=599 separated by commas (e.g. \
             200-299,304), got {value:?}"
        ))
    };
    let code = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(bad)
    };
    value
        .split(',')
        .map(|item| match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (code(a)?, code(b)?);
                if a > b {
                    return Err(bad());
                }
                Ok((a, b))
            }
            None => code(item).map(|c| (c, c)),
        })
        .collect()
}

fn show_expect(expect: &[(u16, u16)]) -> String {
    expect
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl SpecOptions for HttpProbeOptions {
    const KIND: &'static str = "transport";
    const NAME: &'static str = "http-probe";

    /// `path`, `expect`, `host`, and the schedule keys.
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if let Some(set) = self.schedule.set(key, value) {
            return set;
        }
        match key {
            "path" => {
                visible(key, value)?;
                if !value.starts_with('/') || value.parse::<hyper::Uri>().is_err() {
                    return Err(Error::InvalidArgument(format!(
                        "path must be an absolute path such as /healthz, got {value:?}"
                    )));
                }
                self.path = value.to_owned();
            }
            "expect" => self.expect = parse_expect(value)?,
            "host" => {
                visible(key, value)?;
                self.host = Some(value.to_owned());
            }
            other => {
                let mut known = vec!["path", "expect", "host"];
                known.extend(SCHEDULE_KEYS);
                return Err(unknown_key(Self::NAME, other, &known));
            }
        }
        Ok(())
    }

    fn changed(&self) -> Vec<(&'static str, String)> {
        let d = HttpProbeOptions::default();
        let mut pairs = Vec::new();
        if self.path != d.path {
            pairs.push(("path", self.path.clone()));
        }
        if self.expect != d.expect {
            pairs.push(("expect", show_expect(&self.expect)));
        }
        if let Some(host) = &self.host {
            pairs.push(("host", host.clone()));
        }
        pairs.extend(self.schedule.changed());
        pairs
    }
}

impl FromStr for HttpProbeOptions {
    type Err = Error;
    fn from_str(s: &str) -> Result<HttpProbeOptions> {
        HttpProbeOptions::from_spec(s)
    }
}

impl fmt::Display for HttpProbeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_spec())
    }
}

impl HttpProbeOptions {
    /// The transport that probes with these options.
    pub fn transport(self) -> Arc<dyn Transport> {
        let schedule = self.schedule;
        Arc::new(ProbeTransport::new(
            "http-probe",
            HttpProber { options: self },
            schedule,
        ))
    }
}

struct HttpProber {
    options: HttpProbeOptions,
}

impl HttpProber {
    async fn get(&self, addr: &str) -> ProbeResult {
        let mut stream = None;
        let mut last = None;
        for target in crate::tcp_probe::resolve(addr).await? {
            match TcpStream::connect(target).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = stream.ok_or_else(|| match last {
            Some(e) => format!("connect to {addr}: {e}"),
            None => format!("connect to {addr}: the name has no addresses"),
        })?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| format!("http to {addr}: {e}"))?;
        let host = self.options.host.as_deref().unwrap_or(addr);
        let mut request = hyper::Request::get(self.options.path.as_str())
            .body(Empty::new())
            .map_err(|e| format!("http to {addr}: {e}"))?;
        let headers = request.headers_mut();
        headers.insert(
            HOST,
            HeaderValue::from_str(host).map_err(|e| format!("http to {addr}: host: {e}"))?,
        );
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        headers.insert(USER_AGENT, HeaderValue::from_static("peerlb-http-probe"));
        // The connection is driven here, beside the request; both end with this probe. The
        // server may close it (`Connection: close`) as soon as it answered: the answer is
        // then still waiting in the request's future.
        let mut connection = std::pin::pin!(connection);
        let mut response = std::pin::pin!(sender.send_request(request));
        let mut connected = true;
        let response = loop {
            tokio::select! {
                biased;
                answer = &mut response => break answer,
                _ = &mut connection, if connected => connected = false,
            }
        }
        .map_err(|e| format!("http to {addr}: {e}"))?;
        let status = response.status().as_u16();
        if self
            .options
            .expect
            .iter()
            .any(|&(a, b)| (a..=b).contains(&status))
        {
            Ok(())
        } else {
            Err(format!(
                "http to {addr}: GET {} answered {status}",
                self.options.path
            ))
        }
    }
}

impl Prober for HttpProber {
    type Session = ();

    fn session(&self, _addr: &str) {}

    fn probe<'a>(
        &'a self,
        addr: &'a str,
        _session: &'a mut (),
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>> {
        Box::pin(self.get(addr))
    }
}
