//! The file updater's parser on arbitrary bytes: it returns peers or one error naming the
//! file and line, never panics; what it accepts are valid, distinct peer ids with weights of
//! at least 1, and written back as lines (zone and priority included) they parse to the
//! same peers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerlb::{ErrorCode, PeerId};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match peerlb::updater::parse_peer_lines(&text, "fuzz.peers") {
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::SourceFailed, "{e}");
            assert!(e.to_string().contains("fuzz.peers:"), "names the file: {e}");
        }
        Ok(peers) => {
            let mut seen = std::collections::HashSet::new();
            for p in &peers {
                PeerId::new(&p.id).unwrap_or_else(|e| panic!("accepted a bad id {:?}: {e}", p.id));
                assert!(p.weight >= 1, "accepted weight 0 for {:?}", p.id);
                assert!(seen.insert(p.id.clone()), "accepted {:?} twice", p.id);
            }
            let lines: String = peers
                .iter()
                .map(|p| {
                    let zone = p.zone.as_ref().map(|z| format!(" zone={z}"));
                    format!(
                        "{} {}{} priority={}\n",
                        p.id,
                        p.weight,
                        zone.unwrap_or_default(),
                        p.priority
                    )
                })
                .collect();
            let again = peerlb::updater::parse_peer_lines(&lines, "fuzz.peers")
                .unwrap_or_else(|e| panic!("its own peers written back do not parse: {e}"));
            assert_eq!(again, peers);
        }
    }
});
