"""The list's change path from Python: ``update`` of 10 000 and 100 000 peers into a
running list, ``start()`` of 100 000, and the longest time another Python thread could not
run meanwhile (the GIL is released during core calls), with the targets' verdicts.

    python bench_scale.py --out target/bench/python-scale.md

Ids are 16 bytes (``peer-NNNNNN:8080``); each timing is the median of several runs, each
on a fresh list. Speed is measured here, never in tests.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Callable, List, Tuple

import peerlb

UPDATE_10K_MS = 25.0
RUNS = 7


def ids(n: int, start: int = 0) -> List[str]:
    return [f"peer-{i:06d}:8080" for i in range(start, start + n)]


def timed(make: Callable[[], peerlb.PeerList], op: Callable[[peerlb.PeerList], None]) -> float:
    lst = make()
    t = time.perf_counter()
    op(lst)
    return (time.perf_counter() - t) * 1e3


def median_ms(make: Callable[[], peerlb.PeerList], op: Callable[[peerlb.PeerList], None], runs: int) -> float:
    return statistics.median(timed(make, op) for _ in range(runs))


def running() -> peerlb.PeerList:
    lst = peerlb.PeerList("round-robin", shuffle=False)
    lst.start()
    return lst


def worst_stall_ms(op: Callable[[], None]) -> Tuple[float, float]:
    """(the call's ms, the longest gap another thread saw between two of its ticks)."""
    stop = threading.Event()
    gaps: List[float] = []

    def ticker() -> None:
        last = time.perf_counter()
        worst = 0.0
        while not stop.is_set():
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now
            time.sleep(0)
        gaps.append(worst * 1e3)

    t = threading.Thread(target=ticker)
    t.start()
    time.sleep(0.05)
    start = time.perf_counter()
    op()
    took = (time.perf_counter() - start) * 1e3
    time.sleep(0.05)
    stop.set()
    t.join()
    return took, gaps[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    add10k, add100k = ids(10_000), ids(100_000)
    u10k = median_ms(running, lambda l: l.update(add=add10k), RUNS)
    u100k = median_ms(running, lambda l: l.update(add=add100k), 3)

    def idle() -> peerlb.PeerList:
        lst = peerlb.PeerList("round-robin", shuffle=False)
        lst.update(add=add100k)
        return lst

    s100k = median_ms(idle, lambda l: l.start(), 3)
    lst = running()
    took, stall = worst_stall_ms(lambda: lst.update(add=add100k))
    ok = u10k <= UPDATE_10K_MS
    lines = [
        "## The change path from Python (`bench_scale.py`)",
        "",
        f"Medians of {RUNS} runs (3 at 100 000), round-robin, 16-byte ids, measured in this run.",
        "",
        "| measured | value |",
        "|---|---:|",
        f"| `update(add=...)` of 10 000 peers into a running list | {u10k:.1f} ms |",
        f"| `update(add=...)` of 100 000 peers into a running list | {u100k:.1f} ms |",
        f"| `start()` of 100 000 peers | {s100k:.1f} ms |",
        f"| longest stall of another Python thread during a 100 000-peer update ({took:.0f} ms) | {stall:.1f} ms |",
        "",
        "| target | measured | verdict |",
        "|---|---:|---|",
        f"| Python `update` of 10 000 peers ≤ {UPDATE_10K_MS:.0f} ms | {u10k:.1f} ms | "
        + ("**met**" if ok else "**missed** (converting the ids is part of the call)")
        + " |",
        "",
    ]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
