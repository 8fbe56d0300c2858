//! `wsbackend`: an echo backend speaking the balancer's relay protocol. Prints one line
//! with its address, then serves until killed.

use std::io::Write;

use peerlb_wsbalancer::args;
use peerlb_wsbalancer::backend::{serve, EchoOptions};

const USAGE: &str = "usage: wsbackend [--listen ADDR] [--name NAME] [--decline STATUS]
  --listen ADDR     default 127.0.0.1:0 (any free port)
  --name NAME       stamped as \"backend\" into answers to JSON objects
  --decline STATUS  refuse every handshake with this HTTP status (401, 403)";

#[tokio::main]
async fn main() {
    let mut listen = "127.0.0.1:0".to_owned();
    let mut options = EchoOptions {
        name: "backend".into(),
        decline: None,
    };
    for (name, value) in args::pairs() {
        match name.as_str() {
            "listen" => listen = value,
            "name" => options.name = value,
            "decline" => {
                options.decline = Some(
                    value
                        .parse()
                        .unwrap_or_else(|_| args::fail("bad --decline", USAGE)),
                )
            }
            _ => args::fail(&format!("unknown option --{name}"), USAGE),
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| args::fail(&format!("cannot listen on {listen}: {e}"), USAGE));
    println!(
        "wsbackend {} listening on {}",
        options.name,
        listener.local_addr().expect("bound")
    );
    let _ = std::io::stdout().flush();
    serve(listener, options).await;
}
