//! The test DNS server the DNS updaters poll: UDP on 127.0.0.1, SRV records pointing at
//! the DNS-fed backends, and three modes the fault schedule flips between: answering,
//! SERVFAIL, and an empty answer (NOERROR, no records).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// What the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsMode {
    Answer = 0,
    ServFail = 1,
    Empty = 2,
}

/// The name the updaters follow.
pub const NAME: &str = "_http._tcp.soak.peerlb.test.";

pub struct DnsServer {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    pub served: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl DnsServer {
    /// Serves SRV records `127.0.0.1:<port>` (priority 10, weight 1) for `ports`.
    pub fn start(ports: Vec<u16>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP port for DNS");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(DnsMode::Answer as u8));
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (m, st, sv) = (mode.clone(), stop.clone(), served.clone());
        let thread = thread::spawn(move || {
            let target = Name::from_ascii("127.0.0.1.").unwrap();
            let mut buf = [0u8; 1500];
            while !st.load(Ordering::SeqCst) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut resp = Message::new();
                resp.set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(query.op_code())
                    .set_recursion_desired(query.recursion_desired())
                    .set_authoritative(true);
                let mode = m.load(Ordering::SeqCst);
                for q in query.queries() {
                    resp.add_query(q.clone());
                    if mode == DnsMode::ServFail as u8 {
                        resp.set_response_code(ResponseCode::ServFail);
                    } else if mode == DnsMode::Answer as u8 && q.query_type() == RecordType::SRV {
                        for port in &ports {
                            resp.add_answer(Record::from_rdata(
                                q.name().clone(),
                                1,
                                RData::SRV(SRV::new(10, 1, *port, target.clone())),
                            ));
                        }
                    }
                }
                if let Ok(bytes) = resp.to_vec() {
                    let _ = socket.send_to(&bytes, peer);
                    sv.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        DnsServer {
            addr,
            mode,
            stop,
            served,
            thread: Some(thread),
        }
    }

    pub fn set_mode(&self, mode: DnsMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
