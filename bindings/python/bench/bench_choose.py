"""Python-side cost of peerlb: ``choose`` + ``finish`` against an empty method call of the
same extension (``PeerList._noop``), measured on the installed wheel; and peerlb's
``hash-ring`` (ketama) next to ``uhashring`` on the same 100 nodes and keys.

    python bench_choose.py --wheel NAME --out result.json     # measure the installed wheel
    python bench_choose.py --report table.md a.json b.json    # markdown table of results

Each number is the best of several runs of a tight loop inside a function (so it
includes the Python loop itself; the empty loop is reported too).

The comparison with uhashring (``pip install uhashring``; ``make bench-python`` installs
it) is skipped, and said so, where it is not installed. The report also writes
``python.compare.json`` beside the markdown for the summary's comparison table.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time
from typing import Callable, Dict, List

import peerlb

N = 100_000
REPEAT = 15

# The hash comparison: 100 nodes, 4096 distinct text keys, the same for both libraries.
RING_NODES = [f"10.0.{i // 250}.{i % 250 + 1}:11211" for i in range(100)]
KEYS = [f"user:{i}" for i in range(4096)]
KEY_MASK = len(KEYS) - 1

PEERLB_RING = f"`lst.choose(shard_key=k).finish()` hash-ring (ketama), {len(RING_NODES)} peers"
PEERLB_RING_FAST = (
    f"`lst.choose(shard_key=k).finish()` hash-ring:fast (xxh3, not ketama), {len(RING_NODES)} peers"
)
UHASHRING_KETAMA = f'`ring.get_node(k)` uhashring `HashRing(nodes, hash_fn="ketama")`, {len(RING_NODES)} nodes'
UHASHRING_DEFAULT = f"`ring.get_node(k)` uhashring `HashRing(nodes)` (default md5 ring), {len(RING_NODES)} nodes"
NOOP = "`lst._noop()` (empty method call)"
# The goals: ketama at least 5x uhashring's ketama ring (both pay for MD5), the fast mode
# (xxh3) at least 10x.
GOAL_KETAMA_VS_UHASHRING = 5.0
GOAL_FAST_VS_UHASHRING = 10.0
# (peerlb case, uhashring case, goal): ketama against the ring it agrees with, against
# uhashring's default ring, and peerlb's fast mode against the ketama ring.
PAIRS = [
    (PEERLB_RING, UHASHRING_KETAMA, GOAL_KETAMA_VS_UHASHRING),
    (PEERLB_RING, UHASHRING_DEFAULT, None),
    (PEERLB_RING_FAST, UHASHRING_KETAMA, GOAL_FAST_VS_UHASHRING),
]

Case = Callable[[int], None]


def uhashring_rings() -> Dict[str, object]:
    """uhashring's rings by case name, or none when uhashring is not installed."""
    try:
        from uhashring import HashRing  # type: ignore[import-not-found]
    except ImportError:
        print("uhashring is not installed: the comparison with it is skipped", file=sys.stderr)
        return {}
    return {
        UHASHRING_KETAMA: HashRing(RING_NODES, hash_fn="ketama"),
        UHASHRING_DEFAULT: HashRing(RING_NODES),
    }


def ring_list(strategy: str = "hash-ring") -> peerlb.PeerList:
    lst = peerlb.PeerList(strategy, seed=1)
    lst.update(add=RING_NODES)
    lst.start()
    return lst


def agreement(rings: Dict[str, object]) -> List[int]:
    """[keys where peerlb's ketama ring and uhashring's agree, keys checked]."""
    ring = rings.get(UHASHRING_KETAMA)
    if ring is None:
        return [0, 0]
    lst = ring_list()
    same = 0
    for k in KEYS:
        with lst.choose(shard_key=k) as c:
            same += c.peer == ring.get_node(k)  # type: ignore[attr-defined]
    lst.stop()
    return [same, len(KEYS)]


def cases() -> Dict[str, Case]:
    peers = [f"10.0.0.{i}:8080" for i in range(8)]

    def make(strategy: str) -> peerlb.PeerList:
        lst = peerlb.PeerList(strategy, seed=1)
        lst.update(add=peers)
        lst.start()
        return lst

    rr = make("round-robin")
    out: Dict[str, Case] = {}

    def empty_loop(n: int) -> None:
        for _ in range(n):
            pass

    def noop(n: int) -> None:
        f = rr._noop
        for _ in range(n):
            f()

    def choose_finish(n: int) -> None:
        choose = rr.choose
        for _ in range(n):
            choose().finish()

    def choose_drop(n: int) -> None:
        choose = rr.choose
        for _ in range(n):
            choose()

    def choose_args(n: int) -> None:
        choose = rr.choose
        for _ in range(n):
            c = choose(timeout=1.0)
            c.peer
            c.finish("ok", 0.001)

    def with_block(n: int) -> None:
        choose = rr.choose
        for _ in range(n):
            with choose() as c:
                c.peer

    out["empty loop"] = empty_loop
    out["`lst._noop()` (empty method call)"] = noop
    out["`lst.choose().finish()` round-robin"] = choose_finish
    out["`lst.choose()` dropped (finished as cancelled)"] = choose_drop
    out["`c = lst.choose(timeout=1.0); c.peer; c.finish('ok', 0.001)`"] = choose_args
    out["`with lst.choose() as c: c.peer`"] = with_block
    for strategy in ["random", "fewest-pending", "two-random-choices"]:
        lst = make(strategy)

        def run(n: int, lst: peerlb.PeerList = lst) -> None:
            choose = lst.choose
            for _ in range(n):
                choose().finish()

        out[f"`lst.choose().finish()` {strategy}"] = run

    for name, strategy in ((PEERLB_RING, "hash-ring"), (PEERLB_RING_FAST, "hash-ring:fast")):
        ring_lst = ring_list(strategy)

        def peerlb_ring(n: int, lst: peerlb.PeerList = ring_lst) -> None:
            choose, keys = lst.choose, KEYS
            for i in range(n):
                choose(shard_key=keys[i & KEY_MASK]).finish()

        out[name] = peerlb_ring
    for name, ring in uhashring_rings().items():

        def theirs(n: int, ring: object = ring) -> None:
            get, keys = ring.get_node, KEYS  # type: ignore[attr-defined]
            for i in range(n):
                get(keys[i & KEY_MASK])

        out[name] = theirs
    return out


def measure(all_cases: Dict[str, Case]) -> Dict[str, float]:
    """Best time per iteration of each case; the cases take turns in every round, so a
    noisy moment on a shared machine does not skew one case against another."""
    best = {name: float("inf") for name in all_cases}
    for case in all_cases.values():
        case(N // 10)  # warm up
    for _ in range(REPEAT):
        for name, case in all_cases.items():
            t = time.perf_counter_ns()
            case(N)
            best[name] = min(best[name], (time.perf_counter_ns() - t) / N)
    return best


def run(wheel: str, out: str) -> None:
    results = measure(cases())
    data = {
        "wheel": wheel,
        "python": platform.python_version(),
        "results": results,
        "agreement": agreement(uhashring_rings()),
    }
    with open(out, "w") as f:
        json.dump(data, f, indent=1)
    for name, ns in results.items():
        print(f"{wheel}: {ns:8.1f} ns  {name}")


def report(out: str, inputs: List[str]) -> None:
    runs = []
    for path in inputs:
        with open(path) as f:
            runs.append(json.load(f))
    names = list(runs[0]["results"])
    noop = NOOP
    cf = "`lst.choose().finish()` round-robin"
    lines = [
        "# Python: choose + finish vs an empty method call",
        "",
        f"Python {runs[0]['python']} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"ns per iteration, best of {REPEAT} runs of {N:,} (includes the loop).",
        "",
        "| operation | " + " | ".join(f"{r['wheel']} wheel (ns)" for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(f"{r['results'][name]:.1f}" for r in runs) + " |"
        )
    lines.append(
        "| **ratio choose+finish / empty method call** (goal <= 2x) | "
        + " | ".join(f"**{r['results'][cf] / r['results'][noop]:.1f}x**" for r in runs)
        + " |"
    )
    lines.append(
        "| ratio choose+finish / two empty method calls | "
        + " | ".join(f"{r['results'][cf] / (2 * r['results'][noop]):.1f}x" for r in runs)
        + " |"
    )
    lines += vs_uhashring(runs)
    lines += ["", "Wheels:", ""]
    for whl in sorted(glob.glob("dist/peerlb-*.whl")):
        lines.append(f"- `{os.path.basename(whl)}`: {os.path.getsize(whl) / 1024:.0f} KiB")
    lines += [
        "",
        "`choose().finish()` is two Python calls plus a new `Choice` object, so it cannot",
        "get near one empty call; the cp310-abi3 wheel is faster because the 3.10 limited",
        "API has vectorcall (METH_FASTCALL) for methods with arguments.",
        "",
    ]
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    write_compare(os.path.join(os.path.dirname(out), "python.compare.json"), runs)


def vs_uhashring(runs: List[dict]) -> List[str]:
    """The hash-ring rows of the report: speed-ups over uhashring and key agreement."""
    lines = ["", f"## Python: hash-ring vs uhashring ({len(RING_NODES)} nodes, {len(KEYS)} keys)", ""]
    if UHASHRING_KETAMA not in runs[0]["results"]:
        return lines + ["uhashring was not installed: not compared.", ""]
    lines += [
        "Both sides look up the next of the same keys on the same nodes in the same loop; "
        "peerlb's op also starts and finishes a request (pending counts). "
        "Speed-up = uhashring's ns ÷ peerlb's. Ketama hashes each key with MD5 on both sides "
        "(about 100 ns of peerlb's op: compare the Rust hash-ring and maglev rows); "
        "hash-ring:fast uses xxh3 instead and maps keys differently.",
        "",
        "| peerlb | uhashring | " + " | ".join(f"{r['wheel']} speed-up" for r in runs) + " |",
        "|---|---|" + "---:|" * len(runs),
    ]
    for ours, other, goal in PAIRS:
        goal_text = f" (goal >= {goal:.0f}x)" if goal else ""
        lines.append(
            f"| {ours} | {other}{goal_text} | "
            + " | ".join(f"**{r['results'][other] / r['results'][ours]:.1f}x**" for r in runs)
            + " |"
        )
    same, total = runs[-1]["agreement"]
    lines += [
        "",
        f"Same owner as uhashring's ketama ring on {same} of {total} keys"
        + (" (all)." if same == total else " — **they disagree**."),
    ]
    return lines


def write_compare(path: str, runs: List[dict]) -> None:
    """Rows for the summary's comparison table (benches/src/compare.rs), from the run of
    the wheel pip installs for this Python (the last one)."""
    r = runs[-1]["results"]
    rows = []
    for ours, other, goal in PAIRS:
        if other not in r:
            continue
        rows.append(
            {
                "surface": f"Python ({runs[-1]['wheel']} wheel)",
                "peerlb": ours,
                "peerlb_ns": r[ours],
                "other": other,
                "other_ns": r[other],
                "goal": goal,
                "baseline": "empty method call",
                "baseline_ns": r[NOOP],
            }
        )
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheel", default="installed")
    parser.add_argument("--out")
    parser.add_argument("--report")
    parser.add_argument("inputs", nargs="*")
    args = parser.parse_args()
    if args.report:
        report(args.report, args.inputs)
    elif args.out:
        run(args.wheel, args.out)
    else:
        sys.exit("give --out or --report")


if __name__ == "__main__":
    main()
