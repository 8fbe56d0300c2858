//! `wsbalancer`: the WebSocket balancer. Prints one line with the addresses it serves on,
//! then serves until killed. See the crate's README for the protocol and the admin API.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use peerlb_wsbalancer::args;
use peerlb_wsbalancer::balancer::{Balancer, Config};
use peerlb_wsbalancer::valve::{SizeLimit, Stamper};

const USAGE: &str = "usage: wsbalancer --backend HOST:PORT [--backend ...]
  --listen ADDR            WebSocket clients (default 127.0.0.1:0, any free port)
  --admin ADDR             admin HTTP API, loopback only (default 127.0.0.1:0)
  --strategy SPEC          peerlb strategy (default fewest-pending)
  --max-message-bytes N    size-limit valve: drop larger messages
  --stamp FIELD=VALUE      stamper valve: add FIELD to client JSON objects
  --wait-ms N              how long opening or failing over a session waits (default 5000)
  --quiet                  do not log sessions";

#[tokio::main]
async fn main() {
    let mut config = Config::default();
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut admin: SocketAddr = "127.0.0.1:0".parse().expect("address");
    for (name, value) in args::pairs() {
        let bad =
            |what: &str| -> ! { args::fail(&format!("bad --{name} {value:?}: {what}"), USAGE) };
        match name.as_str() {
            "backend" => config.backends.push(value),
            "listen" => listen = value.parse().unwrap_or_else(|_| bad("an address")),
            "admin" => admin = value.parse().unwrap_or_else(|_| bad("an address")),
            "strategy" => config.strategy = value,
            "max-message-bytes" => config.valves.push(SizeLimit::new(
                value.parse().unwrap_or_else(|_| bad("a number")),
            )),
            "stamp" => {
                let (field, v) = value.split_once('=').unwrap_or_else(|| bad("FIELD=VALUE"));
                config.valves.push(Stamper::new(field, v));
            }
            "wait-ms" => {
                config.wait =
                    Duration::from_millis(value.parse().unwrap_or_else(|_| bad("a number")))
            }
            "quiet" => config.log_sessions = false,
            "help" => args::fail("", USAGE),
            _ => args::fail(&format!("unknown option --{name}"), USAGE),
        }
    }
    if !admin.ip().is_loopback() {
        args::fail("the admin API listens on loopback addresses only", USAGE);
    }
    let balancer = Balancer::new(config).unwrap_or_else(|e| args::fail(&format!("{e}"), USAGE));
    let clients = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| args::fail(&format!("cannot listen on {listen}: {e}"), USAGE));
    let admins = tokio::net::TcpListener::bind(admin)
        .await
        .unwrap_or_else(|e| args::fail(&format!("cannot listen on {admin}: {e}"), USAGE));
    println!(
        "wsbalancer listening on ws://{} admin http://{}",
        clients.local_addr().expect("bound"),
        admins.local_addr().expect("bound")
    );
    let _ = std::io::stdout().flush();
    tokio::spawn(peerlb_wsbalancer::admin::serve(balancer.clone(), admins));
    balancer.serve(clients).await;
}
