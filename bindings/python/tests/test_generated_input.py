"""Generated bad input (hypothesis): every public constructor, function and method called
with values hypothesis generates: wrong types, huge and negative ints, NaN and infinite
timeouts, non-string ids, empty and over-long ids, NULs, lone surrogates, lying and failing
sequences, callbacks and transports that raise, return nonsense or call back in.

Each call either works or raises a ``peerlb.PeerlbError`` whose ``.code`` is one of core's
codes; a value of the wrong Python *type* raises ``TypeError`` (the binding's documented
Python convention; a wrong *value* is ``peerlb.InvalidArgument``, also a ``ValueError``).
Nothing else escapes, the process never crashes, and afterwards the list still adds,
chooses, finishes and removes peers.

Nothing here reaches the network: lists with a ``tcp-probe`` transport are made but get no
peers, DNS and etcd updaters are made and bound but never started, Upstream checks are a
Python callable, and file updaters start only on paths inside a temporary folder.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import os
import tempfile
from typing import Any, Callable, Dict, Iterator, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest

import peerlb

# Subscribers that raise on purpose are reported through sys.unraisablehook.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CODES = {code for code, _ in peerlb.ERROR_CODES}
EXAMPLES = int(os.environ.get("PEERLB_GENERATED_EXAMPLES", "200"))
# The same examples on every run (a CI run is reproducible); PEERLB_GENERATED_RANDOM=1
# draws new ones, for a longer hunt (with PEERLB_GENERATED_EXAMPLES).
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=os.environ.get("PEERLB_GENERATED_RANDOM", "") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Lying:
    """A sequence whose length and iteration lie or fail."""

    def __init__(self, mode: int) -> None:
        self.mode = mode

    def __len__(self) -> int:
        if self.mode == 0:
            raise RuntimeError("len fails")
        return 2**40

    def __length_hint__(self) -> int:
        return 2**62

    def __iter__(self) -> Iterator[Any]:
        if self.mode == 1:
            raise RuntimeError("iter fails")
        if self.mode == 2:
            return iter(["a:1", 7, None])
        return iter(())

    def __index__(self) -> int:
        raise RuntimeError("index fails")

    def __float__(self) -> float:
        raise RuntimeError("float fails")

    def __str__(self) -> str:
        raise RuntimeError("str fails")


surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
odd_text = st.one_of(
    st.text(max_size=40),
    surrogates,
    st.sampled_from(["", "\0", "a\0b", "a" * 1024, "a" * 1025, "é" * 600, ":", "[::1]:80"]),
)
numbers = st.one_of(
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**64, 2**63, 2**32, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 1e-300, 1e300]),
    st.builds(datetime.timedelta, seconds=st.floats(-1e6, 1e6)),
)
atoms = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    odd_text,
    st.binary(max_size=40),
    st.builds(Lying, st.integers(0, 4)),
    st.just(object()),
    st.just(len),
)
values = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=8), inner, max_size=3),
        st.frozensets(st.text(max_size=8), max_size=3),
    ),
    max_leaves=8,
)
ids = st.one_of(odd_text, st.sampled_from(["a:1", "b:2", "10.0.0.1:80"]), atoms)
seconds = st.one_of(numbers, st.none(), st.sampled_from([0, 0.001, 0.05]), atoms)

_probe = itertools.count()


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Tuple[str, Any]:
    """Runs one call: ``("ok", result)``, ``("peerlb", error)`` or ``("type", error)``."""
    try:
        return "ok", fn(*args, **kwargs)
    except peerlb.PeerlbError as e:
        assert e.code in CODES, f"{type(e).__name__} with unknown code {e.code!r}"
        assert e.errors and all(x.code in CODES for x in e.errors)
        str(e)  # renders
        return "peerlb", e
    except TypeError as e:
        return "type", e


def is_probe_transport(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("tcp-probe")


def assert_usable(lst: peerlb.PeerList) -> None:
    """The list still works: a fresh peer can be added, chosen, finished and removed."""
    peer = f"probe-{next(_probe)}:1"
    if not lst.running:
        lst.start()
    lst.update(add=[peer])
    chosen = set()
    for _ in range(len(lst) + 1):
        with lst.choose(timeout=2.0) as choice:
            chosen.add(choice.peer)
        if peer in chosen:
            break
    info = lst.introspect()
    assert any(p["id"] == peer for p in info["peers"])
    lst.update(remove=[peer])
    assert all(p["id"] != peer for p in lst.introspect()["peers"])


def short(timeout: Any) -> Any:
    """A drawn timeout, with finite waits longer than 0.2 s cut to 0.2 s (values the
    binding refuses, and zero, negative, NaN and infinite ones, stay as drawn)."""
    if isinstance(timeout, bool):
        return timeout
    if isinstance(timeout, (int, float)) and 0.2 < timeout < 1e18:
        return 0.2
    if isinstance(timeout, datetime.timedelta) and timeout.total_seconds() > 0.2:
        return datetime.timedelta(seconds=0.2)
    return timeout


def offer_a_peer(lst: peerlb.PeerList) -> None:
    """Makes sure a fresh, enabled peer is there, so a choose answers at once whatever
    its timeout (the timeout's conversion is what is tested)."""
    outcome(lst.update, add=[f"fresh-{next(_probe)}:1"])


def running_list(**kwargs: Any) -> peerlb.PeerList:
    lst = peerlb.PeerList(shuffle=False, **kwargs)
    lst.update(add=["a:1", "b:2", "c:3"])
    lst.start()
    return lst


# ---- constructors ---------------------------------------------------------------------


@SETTINGS
@given(
    positional=st.lists(values, max_size=2),
    strategy=st.one_of(values, st.sampled_from(list(peerlb.STRATEGIES)), st.just("maglev?table=7")),
    shuffle=values,
    seed=values,
    fail_fast=values,
    transport=values,
    ejection=st.one_of(values, st.dictionaries(st.sampled_from(
        ["failures", "base_ms", "max_ms", "max_percent", "panic_percent", "x"]), values)),
    clock=st.one_of(values, st.builds(peerlb.ManualClock)),
)
def test_peer_list_constructor(
    positional: List[Any], strategy: Any, shuffle: Any, seed: Any, fail_fast: Any,
    transport: Any, ejection: Any, clock: Any,
) -> None:
    if is_probe_transport(transport):
        transport = None
    kwargs = dict(shuffle=shuffle, seed=seed, fail_fast=fail_fast, transport=transport,
                  ejection=ejection, clock=clock)
    kind, lst = outcome(peerlb.PeerList, *positional[:1], **kwargs)
    if kind == "ok" and lst.introspect()["transport"] == "always-available":
        assert_usable(lst)
    outcome(peerlb.PeerList, strategy)


@SETTINGS
@given(
    ratio=values, min_per_sec=values, ttl=seconds, clock=st.one_of(values, st.builds(peerlb.ManualClock)),
    advance=seconds,
)
def test_clock_and_budget(ratio: Any, min_per_sec: Any, ttl: Any, clock: Any, advance: Any) -> None:
    outcome(peerlb.RetryBudget, ratio, min_per_sec, ttl, clock)
    outcome(peerlb.RetryBudget, ratio=ratio, min_per_sec=min_per_sec, ttl=ttl, clock=clock)
    c = peerlb.ManualClock()
    outcome(c.advance, advance)
    assert c.elapsed >= 0


# ---- the list's methods ---------------------------------------------------------------


def call_method(lst: peerlb.PeerList, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from([
        "update", "update_positional", "choose", "choose_async", "disable", "enable", "reset",
        "delete", "subscribe", "retry", "retry_async", "retrying", "introspect",
        "list_backends", "len", "start", "stop", "finish",
    ]))
    if name == "update":
        add = data.draw(st.one_of(values, st.lists(st.one_of(ids, st.tuples(ids, values),
            st.dictionaries(st.sampled_from(["id", "weight", "x"]), values)), max_size=4)))
        remove = data.draw(st.one_of(values, st.lists(ids, max_size=4)))
        outcome(lst.update, add=add, remove=remove)
    elif name == "update_positional":
        outcome(lst.update, *data.draw(st.lists(values, max_size=3)))
    elif name == "choose":
        offer_a_peer(lst)
        kind, choice = outcome(lst.choose, timeout=data.draw(seconds), shard_key=data.draw(values))
        if kind == "ok":
            choice.finish()
    elif name == "choose_async":
        offer_a_peer(lst)
        timeout, key = data.draw(seconds), data.draw(values)

        async def go() -> Any:
            return await lst.choose_async(timeout=timeout, shard_key=key)

        kind, choice = outcome(asyncio.run, go())
        if kind == "ok":
            choice.finish()
    elif name in ("disable", "enable", "reset", "delete"):
        outcome(getattr(lst, name), data.draw(st.one_of(ids, st.sampled_from(["a:1", "b:2"]))))
    elif name == "subscribe":
        callback = data.draw(st.one_of(values, st.sampled_from([
            lambda e: None,
            lambda e: 1 / 0,
            lambda e: lst.introspect(),
            lambda e: None if "-again" in e.peer else lst.update(add=[f"{e.peer}-again"]),
        ])))
        kind, sub = outcome(lst.subscribe, callback)
        if kind == "ok":
            outcome(lst.update, add=["sub-a:1"], remove=[])
            outcome(lst.update, remove=["sub-a:1"])
            sub.cancel()
            assert sub.cancel() is False
    elif name in ("retry", "retry_async", "retrying"):
        fn = data.draw(st.one_of(values, st.sampled_from([
            lambda p: p,
            lambda p: 1 / 0,
            lambda p: (_ for _ in ()).throw(peerlb.Declined("no")),
            lambda p: lst.stop() if lst.running else None,
        ])))
        # Attempts and time are bounded: a failing function retried 2**31 times for a
        # year is what was asked for, not a defect.
        attempts = data.draw(values)
        if isinstance(attempts, int) and not isinstance(attempts, bool) and 5 < attempts < 2**32:
            attempts = 5
        offer_a_peer(lst)
        kwargs = dict(max_attempts=attempts, timeout=short(data.draw(seconds)),
                      budget=data.draw(st.one_of(values, st.builds(peerlb.RetryBudget))),
                      shard_key=data.draw(values))
        if name == "retry":
            outcome(lst.retry, fn, **kwargs)
        elif name == "retrying":
            kind, decorator = outcome(peerlb.retrying, lst, **kwargs)
            if kind == "ok" and callable(fn):
                outcome(decorator(fn))
        else:
            async def attempt(peer: str) -> str:
                return peer

            async def go() -> Any:
                return await lst.retry_async(attempt if callable(fn) else fn, **kwargs)

            outcome(asyncio.run, go())
    elif name == "introspect":
        assert isinstance(lst.introspect(), dict)
    elif name == "list_backends":
        assert isinstance(lst.list_backends(), list)
    elif name == "len":
        assert len(lst) >= 0
    elif name == "start":
        outcome(lst.start)
    elif name == "stop":
        outcome(lst.stop)
    elif name == "finish":
        offer_a_peer(lst)
        kind, choice = outcome(lst.choose, timeout=0)
        if kind == "ok":
            outcome(choice.finish, data.draw(values), data.draw(seconds))
            if not choice.finished:
                choice.finish()
            kind, _ = outcome(choice.finish)
            assert kind == "peerlb"  # already-finished


@SETTINGS
@given(strategy=st.sampled_from(list(peerlb.STRATEGIES)), data=st.data())
def test_list_methods(strategy: str, data: st.DataObject) -> None:
    lst = running_list(strategy=strategy, clock=peerlb.ManualClock())
    for _ in range(data.draw(st.integers(1, 6))):
        call_method(lst, data)
    # Whatever happened, admin state does not hide the probe, and the list works.
    assert_usable(lst)


# ---- transports, subscribers -----------------------------------------------------------


class EvilTransport:
    """A transport whose callbacks do what hypothesis drew."""

    def __init__(self, behaviour: List[Any], status: Any) -> None:
        self.behaviour = behaviour
        self.status = status
        self.calls = 0
        self.list: Any = None

    def _act(self, subscriber: Any) -> Any:
        what = self.behaviour[self.calls % len(self.behaviour)] if self.behaviour else None
        self.calls += 1
        if what == "raise":
            raise RuntimeError("transport fails")
        if what == "status":
            outcome(subscriber.set_status, self.status)
        if what == "reenter" and self.list is not None and self.calls < 8:
            outcome(self.list.introspect)
            outcome(self.list.update, add=[f"reentered-{self.calls}:1"])
        if what == "available":
            subscriber.set_status("available")
        return what

    def retain(self, peer: str, subscriber: Any) -> Any:
        return self._act(subscriber)

    def release(self, peer: str, subscriber: Any) -> Any:
        return self._act(subscriber)


@SETTINGS
@given(
    behaviour=st.lists(st.sampled_from(["raise", "status", "reenter", "available", None, 42]),
                       max_size=5),
    status=values,
    adds=st.lists(ids, max_size=4),
)
def test_transports_that_misbehave(behaviour: List[Any], status: Any, adds: List[Any]) -> None:
    transport = EvilTransport(behaviour, status)
    lst = peerlb.PeerList(shuffle=False, transport=transport)
    transport.list = lst
    outcome(lst.update, add=adds)
    outcome(lst.start)
    outcome(lst.update, add=["t:1", "t:2"], remove=adds[:1])
    outcome(lst.choose, timeout=0)
    outcome(lst.stop)
    outcome(lst.start)
    # Usable: it answers, and with a transport that behaves, chooses again.
    lst.introspect()
    transport.behaviour = ["available"]
    transport.list = None
    assert_usable(lst)


# ---- updaters and Upstream -------------------------------------------------------------


@SETTINGS
@given(
    peers=st.one_of(values, st.lists(st.one_of(ids, st.tuples(ids, values)), max_size=4)),
    path=values,
    poll=seconds,
    name=st.one_of(values, st.sampled_from(["_http._tcp.example.", "x.test"])),
    record=st.one_of(values, st.sampled_from(["srv", "a", "aaaa", "ip"])),
    port=values,
    nameserver=values,
    interval=seconds,
    threshold=values,
    endpoints=values,
    prefix=values,
    file_text=st.text(max_size=200),
)
def test_updaters(
    peers: Any, path: Any, poll: Any, name: Any, record: Any, port: Any, nameserver: Any,
    interval: Any, threshold: Any, endpoints: Any, prefix: Any, file_text: str,
) -> None:
    lst = running_list()
    kind, static = outcome(peerlb.StaticUpdater, peers)
    if kind == "ok":
        binding = static.bind(lst)
        outcome(binding.start)
        outcome(binding.stop)
    outcome(peerlb.FileUpdater, path, poll_interval=poll)
    with tempfile.TemporaryDirectory() as tmp:
        # Only paths inside the temporary folder are ever read.
        file = os.path.join(tmp, "peers.txt")
        try:
            with open(file, "w", encoding="utf-8", errors="surrogatepass") as f:
                f.write(file_text)
        except UnicodeEncodeError:
            pass
        kind, updater = outcome(peerlb.FileUpdater, file, poll_interval=poll)
        if kind == "ok":
            binding = updater.bind(lst)
            outcome(binding.start)
            binding.peers()
            binding.stats()
            binding.last_error
            outcome(binding.stop)
    # Made and bound, never started: no query leaves the process.
    kind, dns = outcome(peerlb.DnsUpdater, name, record, port=port, nameserver=nameserver,
                        min_interval=interval, max_interval=poll, timeout=interval,
                        empty_threshold=threshold)
    if kind == "ok":
        dns.bind(lst)
    outcome(peerlb.EtcdUpdater, endpoints, prefix, timeout=interval, retry_interval=poll)
    assert_usable(lst)


@SETTINGS
@given(
    backends=st.one_of(values, st.lists(ids, max_size=4)),
    interval=seconds,
    timeout=seconds,
    scores=st.lists(values, min_size=5, max_size=5),
    calls=st.lists(st.tuples(st.sampled_from(["pick", "up", "down", "score", "reconcile",
                                              "scores", "backends", "check_now"]), values),
                   max_size=6),
    check=st.sampled_from([lambda b: True, lambda b: False, lambda b: 1 / 0, lambda b: None]),
)
def test_upstream(backends: Any, interval: Any, timeout: Any, scores: List[Any],
                  calls: List[Tuple[str, Any]], check: Callable[[str], object]) -> None:
    kind, up = outcome(
        peerlb.Upstream, backends, check=check, interval=interval, timeout=timeout,
        initial_score=scores[0], low_score=scores[1], high_score=scores[2],
        fail_delta=scores[3], success_delta=scores[4], manual=True,
    )
    if kind != "ok":
        return
    for method, arg in calls:
        fn = getattr(up, method)
        if method in ("pick", "scores", "backends", "check_now"):
            outcome(fn)
        else:
            outcome(fn, arg)
    up.shutdown()
