#!/usr/bin/env python3
"""Regenerate the ketama test vectors in this folder (`make vectors` runs this).

For several node sets (3, 10 and 100 nodes, each with equal and with random weights) and
10 000 keys each, compute every key's owner with Python's `uhashring`
(`HashRing(nodes, hash_fn="ketama")`) and with npm's `hashring` (default options), check the
two agree on every key, and write `ketama.jsonl`: one JSON object per line,

    {"name": ..., "nodes": [[id, weight], ...], "keys": [...], "owners": [node index, ...]}

The Rust test `core/tests/ketama_vectors.rs` checks peerlb's `hash-ring:ketama` gives the same
owner for every key.

Usage: generate.py [--node-path DIR]   (DIR: a node_modules folder with `hashring`)
"""
import argparse
import json
import os
import random
import subprocess
import sys

from uhashring import HashRing

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS_PER_SET = 10_000
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_./"


def node_sets():
    rng = random.Random(20261123)
    sets = []
    for n in (3, 10, 100):
        ids = [f"10.0.{i // 250}.{i % 250 + 1}:11211" for i in range(n)]
        sets.append((f"{n}-equal", [[i, 1] for i in ids]))
        sets.append((f"{n}-weighted", [[i, rng.randint(1, 5)] for i in ids]))
    # Node names that are not host:port, in non-sorted order.
    sets.append(("names", [["cache-b", 1], ["cache-a", 2], ["cache-c", 1], ["z", 3]]))
    return sets


def keys_for(seed):
    rng = random.Random(seed)
    keys = []
    for i in range(KEYS_PER_SET):
        kind = i % 4
        if kind == 0:
            keys.append(f"user:{rng.randrange(10**9)}")
        elif kind == 1:
            keys.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40))))
        elif kind == 2:
            keys.append(f"session-{i}")
        else:
            keys.append(f"k{rng.randrange(10**6)}é✓")
    return keys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--node-path", default=os.environ.get("NODE_PATH", ""))
    ap.add_argument("--out", default=os.path.join(HERE, "ketama.jsonl"))
    args = ap.parse_args()

    sets = []
    for seed, (name, nodes) in enumerate(node_sets()):
        keys = keys_for(seed)
        ring = HashRing({nid: {"weight": w} for nid, w in nodes}, hash_fn="ketama")
        owners = [ring.get_node(k) for k in keys]
        sets.append({"name": name, "nodes": nodes, "keys": keys, "owners": owners})

    env = dict(os.environ, NODE_PATH=args.node_path)
    payload = json.dumps({"sets": [{"nodes": s["nodes"], "keys": s["keys"]} for s in sets]})
    res = subprocess.run(
        ["node", os.path.join(HERE, "hashring_node.js")],
        input=payload, capture_output=True, text=True, env=env, check=True,
    )
    node_owners = json.loads(res.stdout)

    failed = False
    for s, theirs in zip(sets, node_owners):
        diff = [(k, a, b) for k, a, b in zip(s["keys"], s["owners"], theirs) if a != b]
        print(f"{s['name']}: {len(s['keys'])} keys, uhashring vs hashring differ on {len(diff)}")
        for k, a, b in diff[:5]:
            print(f"   {k!r}: uhashring {a}, hashring {b}")
        failed |= bool(diff)
    if failed:
        sys.exit("uhashring and hashring disagree; vectors not written")

    with open(args.out, "w", encoding="utf-8") as f:
        for s in sets:
            index = {nid: i for i, (nid, _) in enumerate(s["nodes"])}
            line = {
                "name": s["name"],
                "nodes": s["nodes"],
                "keys": s["keys"],
                "owners": [index[o] for o in s["owners"]],
            }
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
