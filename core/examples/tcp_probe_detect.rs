//! Measures how long the `tcp-probe` transport takes to notice a peer going away (listener
//! closed → `unavailable`) and coming back (listening again → `available`).
//!
//! ```sh
//! cargo run --release -p peerlb --example tcp_probe_detect [spec] [trials]
//! ```

use std::net::TcpListener;
use std::time::{Duration, Instant};

use peerlb::{transport_from_spec, ConnectionStatus, ListOptions, PeerList};

fn wait(list: &PeerList, id: &str, want: ConnectionStatus) -> Duration {
    let t0 = Instant::now();
    while list.peer_status(id).unwrap().connection_status != want {
        assert!(t0.elapsed() < Duration::from_secs(60), "never {want:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    t0.elapsed()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let spec = args.next().unwrap_or_else(|| "tcp-probe".to_owned());
    let trials: usize = args.next().map_or(5, |t| t.parse().expect("trials"));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let id = l.local_addr().unwrap().to_string();
    let list = PeerList::new(ListOptions::default().transport(transport_from_spec(&spec).unwrap()))
        .unwrap();
    list.update([id.as_str()], None::<&str>).unwrap();
    list.start().unwrap();
    wait(&list, &id, ConnectionStatus::Available);
    let mut listener = Some(l);
    let (mut downs, mut ups) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        drop(listener.take());
        downs.push(wait(&list, &id, ConnectionStatus::Unavailable));
        listener = Some(TcpListener::bind(&id).unwrap());
        ups.push(wait(&list, &id, ConnectionStatus::Available));
    }
    let show = |v: &[Duration]| {
        let ms: Vec<String> = v.iter().map(|d| format!("{}", d.as_millis())).collect();
        let max = v.iter().max().unwrap().as_millis();
        format!("[{}] ms (max {max} ms)", ms.join(", "))
    };
    println!("{spec}: {trials} trials");
    println!("  listener closed -> unavailable: {}", show(&downs));
    println!("  listening again -> available:   {}", show(&ups));
}
