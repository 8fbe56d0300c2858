"""peerlb's ``hash-ring`` maps every key of ``tests/vectors/ketama.jsonl`` to the owner that
``uhashring`` (``hash_fn="ketama"``) and npm ``hashring`` give it, through the Python package."""

from __future__ import annotations

import json
from pathlib import Path

import peerlb

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "vectors" / "ketama.jsonl"


def test_ketama_agrees_with_uhashring_on_every_key() -> None:
    sets = [json.loads(line) for line in VECTORS.read_text(encoding="utf-8").splitlines()]
    assert len(sets) >= 6
    checked = 0
    for s in sets:
        nodes = [(node, weight) for node, weight in s["nodes"]]
        with peerlb.PeerList(strategy="hash-ring", shuffle=True, seed=7) as lst:
            lst.update(add=nodes)
            for key, owner in zip(s["keys"], s["owners"]):
                c = lst.choose(shard_key=key)
                assert c.peer == nodes[owner][0], f"{s['name']}: key {key!r}"
                c.finish()
                checked += 1
    assert checked >= 60_000
