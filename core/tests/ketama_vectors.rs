//! peerlb's `hash-ring` (ketama mode) maps every key of `tests/vectors/ketama.jsonl` to the
//! owner Python's `uhashring` and npm's `hashring` give it (the file is written by
//! `tests/vectors/generate.py`, which checks those two packages agree; `make vectors`).

use std::path::Path;

use peerlb::strategy::hash_ring::{HashRing, HashRingOptions};
use peerlb::{ListOptions, Peer, PeerId, PeerList, PeerSpec, Request, Strategy};
use serde_json::Value;

struct Set {
    name: String,
    nodes: Vec<(String, u32)>,
    keys: Vec<String>,
    owners: Vec<usize>,
}

fn sets() -> Vec<Set> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/ketama.jsonl");
    let text = std::fs::read_to_string(&path).expect("tests/vectors/ketama.jsonl");
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            Set {
                name: v["name"].as_str().unwrap().to_owned(),
                nodes: v["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| {
                        (
                            n[0].as_str().unwrap().to_owned(),
                            n[1].as_u64().unwrap() as u32,
                        )
                    })
                    .collect(),
                keys: v["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap().to_owned())
                    .collect(),
                owners: v["owners"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o.as_u64().unwrap() as usize)
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn ketama_agrees_with_uhashring_and_hashring_on_every_key() {
    let sets = sets();
    assert!(sets.len() >= 6, "expected at least 6 node sets");
    let mut checked = 0;
    for set in &sets {
        assert_eq!(set.keys.len(), set.owners.len());
        assert!(set.keys.len() >= 10_000, "{}: too few keys", set.name);
        // Add in reverse order: the result must not depend on the order peers arrive in.
        let ring = HashRing::new(HashRingOptions::ketama());
        for (id, w) in set.nodes.iter().rev() {
            ring.add(&Peer::detached(PeerId::new(id).unwrap(), *w));
        }
        let mut wrong = Vec::new();
        for (key, &owner) in set.keys.iter().zip(&set.owners) {
            let got = ring.owner(key.as_bytes()).unwrap();
            if got.as_str() != set.nodes[owner].0 {
                wrong.push((key.clone(), got.to_string(), set.nodes[owner].0.clone()));
            }
        }
        assert!(
            wrong.is_empty(),
            "{}: {} keys differ, e.g. (key, peerlb, uhashring) {:?}",
            set.name,
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        checked += set.keys.len();
    }
    println!("ketama vectors: {checked} keys agree");
}

#[test]
fn ketama_vectors_through_a_peer_list() {
    let sets = sets();
    let set = sets.iter().find(|s| s.name == "10-weighted").unwrap();
    let list = PeerList::new(
        ListOptions::default()
            .strategy_name("hash-ring:ketama")
            .unwrap()
            .shuffle(true)
            .seed(3),
    )
    .unwrap();
    let specs: Vec<PeerSpec> = set
        .nodes
        .iter()
        .map(|(id, w)| PeerSpec::weighted(id.as_str(), *w))
        .collect();
    list.update(specs, None::<&str>).unwrap();
    list.start().unwrap();
    for (key, &owner) in set.keys.iter().zip(&set.owners).take(2000) {
        let choice = list
            .choose(&Request::new().with_shard_key(key.as_bytes()))
            .unwrap();
        assert_eq!(choice.peer().as_str(), set.nodes[owner].0, "key {key:?}");
    }
}
