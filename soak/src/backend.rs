//! The HTTP backends: each one a child process (`soak backend --addr IP:PORT`) serving
//! HTTP/1.1 keep-alive, told how to answer through its standard input: `ok`, `slow` (200 ms
//! before answering), `fail` (503). The harness kills them with SIGKILL (connections reset,
//! port closed) and starts them again on the same address.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How a backend answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok = 0,
    Slow = 1,
    Fail = 2,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Ok => "ok",
            Mode::Slow => "slow",
            Mode::Fail => "fail",
        }
    }
}

/// The delay of a slow backend (well under the clients' 1 s timeout: slow, not failing).
pub const SLOW: Duration = Duration::from_millis(200);

/// The child process side: serves until killed.
pub fn serve(addr: SocketAddr) -> ! {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("backend {addr}: cannot listen: {e}");
        std::process::exit(2)
    });
    let mode = Arc::new(AtomicU8::new(Mode::Ok as u8));
    let control = mode.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let m = match line.trim() {
                "slow" => Mode::Slow,
                "fail" => Mode::Fail,
                _ => Mode::Ok,
            };
            control.store(m as u8, Ordering::SeqCst);
        }
        // The harness is gone: so is this backend.
        std::process::exit(0);
    });
    println!("ready");
    let _ = std::io::stdout().flush();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let mode = mode.clone();
        std::thread::spawn(move || {
            let _ = connection(stream, &mode);
        });
    }
    std::process::exit(0)
}

fn connection(stream: TcpStream, mode: &AtomicU8) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        // The request head; bodies are not used.
        let mut saw_line = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" || line == "\n" {
                if saw_line {
                    break;
                }
                continue;
            }
            saw_line = true;
        }
        let (status, body) = match mode.load(Ordering::SeqCst) {
            1 => {
                std::thread::sleep(SLOW);
                ("200 OK", "ok")
            }
            2 => ("503 Service Unavailable", "failing on purpose"),
            _ => ("200 OK", "ok"),
        };
        write!(
            writer,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        )?;
        writer.flush()?;
    }
}

/// The harness side of one backend.
pub struct Backend {
    pub addr: SocketAddr,
    child: Option<(Child, ChildStdin)>,
    mode: Mode,
}

impl Backend {
    /// Starts a backend process on `addr` and waits until it listens.
    pub fn start(addr: SocketAddr) -> Backend {
        let mut b = Backend {
            addr,
            child: None,
            mode: Mode::Ok,
        };
        b.restart();
        b
    }

    /// Kills the process (SIGKILL): open connections reset, new ones refused.
    pub fn kill(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            drop(stdin);
        }
    }

    /// Starts the process again (answering `ok`).
    pub fn restart(&mut self) {
        self.kill();
        let exe = std::env::current_exe().expect("the soak binary");
        // The port was just closed: binding again may need a moment on a busy machine.
        for attempt in 0..50 {
            let mut child = Command::new(&exe)
                .args(["backend", "--addr", &self.addr.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn a backend");
            let mut ready = String::new();
            let mut out = child.stdout.take().unwrap();
            let mut buf = [0u8; 6];
            let ok = out.read_exact(&mut buf).is_ok();
            ready.push_str(&String::from_utf8_lossy(&buf));
            if ok && ready == "ready\n" {
                let stdin = child.stdin.take().unwrap();
                self.child = Some((child, stdin));
                self.mode = Mode::Ok;
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(20 * (attempt + 1)));
        }
        panic!("backend {} cannot start", self.addr);
    }

    /// Changes how it answers (a dead backend keeps its mode for when it is back: `ok`).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        if let Some((_, stdin)) = &mut self.child {
            let _ = writeln!(stdin, "{}", mode.as_str());
            let _ = stdin.flush();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}
