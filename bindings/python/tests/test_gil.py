"""Core calls that take more than microseconds run with the GIL released: another Python
thread keeps running while a big ``start``/``update``/``stop`` is in core.

How it is measured: a second thread counts in a loop and records the longest time it
could not run (the longest gap between two of its iterations). A call that held the GIL
for all of its ``D`` seconds would stop the counter for about ``D``; the tests grow the
peer count until ``D`` is at least 0.2 s and require every gap to stay under ``D / 2``.
Holding the GIL for the whole call makes them fail; releasing it passes with a wide
margin (gaps are the interpreter's switch interval, set to 1 ms here, plus the short
argument conversion that needs the GIL).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, List, Tuple

import pytest

import peerlb

MIN_DURATION = 0.2
# Any strategy shows it; for start and update, ketama's 40 MD5 digests per peer make
# core's share of the call large next to the argument conversion, in debug and release
# builds alike (and the peer count, so memory, small).
STRATEGY = "hash-ring"
MAX_PEERS = 1 << 20
ATTEMPTS = 3


def longest_stall(action: Callable[[], object]) -> Tuple[float, float, int]:
    """Runs ``action`` while another thread counts; returns how long ``action`` took, the
    longest time the counting thread was stopped meanwhile, and its count."""
    stop = threading.Event()
    started = threading.Event()
    result: List[float] = []
    count = [0]

    def counter() -> None:
        last = time.perf_counter()
        longest = 0.0
        started.set()
        while not stop.is_set():
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now
            count[0] += 1
        result.append(longest)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        th = threading.Thread(target=counter)
        th.start()
        started.wait()
        time.sleep(0.02)  # the counter is running
        t0 = time.perf_counter()
        action()
        took = time.perf_counter() - t0
        stop.set()
        th.join()
    finally:
        sys.setswitchinterval(switch)
    return took, result[0], count[0]


def check_released(make: Callable[[int], Callable[[], object]]) -> None:
    """Grows the peer count until the call takes MIN_DURATION, then checks the counter.

    A call that holds the GIL stops the counter every time; a loaded machine can also stop
    it (the OS runs something else), but not on every try: so the check passes when one of
    ATTEMPTS calls shows the counter running, and fails when all of them stop it."""
    n = 1000
    while True:
        action = make(n)
        took, stall, count = longest_stall(action)
        if took >= MIN_DURATION:
            break
        if n >= MAX_PEERS:
            pytest.skip(f"core does {n} peers in {took:.3f}s: too fast to see the GIL")
        n = min(n * 2, MAX_PEERS)
    seen = []
    for attempt in range(ATTEMPTS):
        if attempt:
            took, stall, count = longest_stall(make(n))
        seen.append(f"stopped {stall:.3f}s of {took:.3f}s ({count} counts)")
        if stall < took / 2:
            return
    pytest.fail(
        f"another thread was stopped for more than half of every call ({n} peers): "
        f"{'; '.join(seen)}: the GIL was held"
    )


def ids(n: int, prefix: str = "p") -> List[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_start_releases_the_gil() -> None:
    def make(n: int) -> Callable[[], object]:
        lst = peerlb.PeerList(STRATEGY, shuffle=False)
        lst.update(add=ids(n))
        return lst.start

    check_released(make)


def test_stop_releases_the_gil() -> None:
    # Stopping does not touch the ring: a plain list keeps the peer count (and memory) low.
    def make(n: int) -> Callable[[], object]:
        lst = peerlb.PeerList("round-robin", shuffle=False)
        lst.update(add=ids(n))
        lst.start()
        return lst.stop

    check_released(make)


def test_update_of_a_running_list_releases_the_gil() -> None:
    def make(n: int) -> Callable[[], object]:
        lst = peerlb.PeerList(STRATEGY, shuffle=False)
        lst.start()
        add = ids(n)
        return lambda: lst.update(add=add)

    check_released(make)
