//! The DNS updater's answer handling on arbitrary DNS responses: bytes are cut into
//! messages (two length bytes, then the message), each parsed as the resolver would and
//! turned into peers for A, AAAA, A+AAAA or SRV, then applied to a list through the
//! updaters' diffing sink, in turn. Nothing panics; after each answer the sink holds
//! exactly the answer's peers and the list holds every valid one of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerlb::fuzzing::{dns_answer_peers, UpdaterSink};
use peerlb::updater::DnsRecord;
use peerlb::{ListOptions, PeerId, PeerList};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, mut rest)) = data.split_first() else {
        return;
    };
    let record = match kind % 4 {
        0 => DnsRecord::Srv,
        1 => DnsRecord::A { port: 80 },
        2 => DnsRecord::Aaaa { port: 8080 },
        _ => DnsRecord::Ip { port: 443 },
    };
    let list = PeerList::new(ListOptions::default()).expect("a default list");
    list.start().expect("starts");
    let sink = UpdaterSink::new(&list);
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let message = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[(2 + len).min(rest.len())..];
        let Some(peers) = dns_answer_peers(record, message) else {
            continue;
        };
        for p in &peers {
            assert!(p.weight >= 1, "{p:?}");
        }
        let desired: std::collections::BTreeMap<String, u32> =
            peers.iter().map(|p| (p.id.clone(), p.weight)).collect();
        sink.apply(peers);
        assert_eq!(sink.applied(), desired);
        for id in desired.keys() {
            if PeerId::new(id).is_ok() {
                assert!(
                    list.peer_status(id).is_some(),
                    "{id:?} was applied but is not in the list"
                );
            }
        }
    }
    // The list stays usable.
    let _ = list.introspect();
    list.stop().expect("stops");
});
