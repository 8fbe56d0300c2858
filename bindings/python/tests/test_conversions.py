"""Every int and float argument: a value too large (or too small) for what core takes is a
``ValueError`` (``peerlb.InvalidArgument``), never an ``OverflowError``.

One case per conversion site of the native module (``src/convert.rs``: ``seconds``,
``number``, ``uint``), so a new argument that bypasses them shows up here as soon as it
gets a row.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, Callable, Dict

import pytest

import peerlb

HUGE = 10**400  # beyond any float
NEG_HUGE = -(10**400)


def running() -> peerlb.PeerList:
    lst = peerlb.PeerList(shuffle=False)
    lst.update(add=["a"])
    lst.start()
    return lst


def choose_async(**kwargs: Any) -> None:
    async def go() -> None:
        running().choose_async(**kwargs)

    asyncio.run(go())


def retry_async(**kwargs: Any) -> None:
    async def fetch(peer: str) -> str:
        return peer

    async def go() -> None:
        await running().retry_async(fetch, **kwargs)

    asyncio.run(go())


# Each site, called with the bad value `v`: durations (convert::seconds)...
DURATIONS: Dict[str, Callable[[Any], object]] = {
    "PeerList.choose(timeout)": lambda v: running().choose(timeout=v),
    "PeerList.choose_async(timeout)": lambda v: choose_async(timeout=v),
    "PeerList.retry(timeout)": lambda v: running().retry(lambda p: p, timeout=v),
    "PeerList.retry_async(timeout)": lambda v: retry_async(timeout=v),
    "retrying(timeout)": lambda v: peerlb.retrying(running(), timeout=v),
    "Choice.finish(latency)": lambda v: running().choose().finish("ok", v),
    "ManualClock.advance(seconds)": lambda v: peerlb.ManualClock().advance(v),
    "RetryBudget(ttl)": lambda v: peerlb.RetryBudget(ttl=v),
    "FileUpdater(poll_interval)": lambda v: peerlb.FileUpdater("/nonexistent", poll_interval=v),
    "DnsUpdater(min_interval)": lambda v: peerlb.DnsUpdater("x.test", min_interval=v),
    "DnsUpdater(max_interval)": lambda v: peerlb.DnsUpdater("x.test", max_interval=v),
    "DnsUpdater(timeout)": lambda v: peerlb.DnsUpdater("x.test", timeout=v),
    "EtcdUpdater(timeout)": lambda v: peerlb.EtcdUpdater(["http://127.0.0.1:1"], "/p", timeout=v),
    "EtcdUpdater(retry_interval)": lambda v: peerlb.EtcdUpdater(
        ["http://127.0.0.1:1"], "/p", retry_interval=v
    ),
    "Upstream(interval)": lambda v: peerlb.Upstream(["a:1"], interval=v),
    "Upstream(timeout)": lambda v: peerlb.Upstream(["a:1"], timeout=v, manual=True),
}

# ... real numbers (convert::number), where any finite float is a value core judges ...
NUMBERS: Dict[str, Callable[[Any], object]] = {
    "RetryBudget(ratio)": lambda v: peerlb.RetryBudget(ratio=v),
    "Upstream(initial_score)": lambda v: peerlb.Upstream(["a:1"], initial_score=v, manual=True),
    "Upstream(low_score)": lambda v: peerlb.Upstream(["a:1"], low_score=v, manual=True),
    "Upstream(high_score)": lambda v: peerlb.Upstream(["a:1"], high_score=v, manual=True),
    "Upstream(fail_delta)": lambda v: peerlb.Upstream(["a:1"], fail_delta=v, manual=True),
    "Upstream(success_delta)": lambda v: peerlb.Upstream(["a:1"], success_delta=v, manual=True),
    "PeerList(overprovisioning_factor)": lambda v: peerlb.PeerList(overprovisioning_factor=v),
}

# ... and ints (convert::uint, or parsed by core from the int's text).
INTS: Dict[str, Callable[[Any], object]] = {
    "DnsUpdater(port)": lambda v: peerlb.DnsUpdater("x.test", "a", port=v),
    "DnsUpdater(empty_threshold)": lambda v: peerlb.DnsUpdater("x.test", empty_threshold=v),
    "PeerList(seed)": lambda v: peerlb.PeerList(seed=v),
    "update(add) weight": lambda v: running().update(add=[("b", v)]),
    "update(add) dict weight": lambda v: running().update(add=[{"id": "b", "weight": v}]),
    "StaticUpdater weight": lambda v: peerlb.StaticUpdater([("b", v)]),
    "retry(max_attempts)": lambda v: running().retry(lambda p: p, max_attempts=v),
    "RetryBudget(min_per_sec)": lambda v: peerlb.RetryBudget(min_per_sec=v),
    "PeerList(ejection)": lambda v: peerlb.PeerList(ejection={"failures": v}),
    "PeerList(min_cluster_size)": lambda v: peerlb.PeerList(min_cluster_size=v),
    "update(add) dict priority": lambda v: running().update(add=[{"id": "b", "priority": v}]),
}

CASES = (
    [(site, v) for site in DURATIONS for v in (HUGE, NEG_HUGE, -1)]
    + [(site, v) for site in NUMBERS for v in (HUGE, NEG_HUGE)]
    + [(site, v) for site in INTS for v in (HUGE, NEG_HUGE, 2**64, -1)]
)
SITES = {**DURATIONS, **NUMBERS, **INTS}


def value_id(v: int) -> str:
    return {HUGE: "10**400", NEG_HUGE: "-10**400", 2**64: "2**64"}.get(v, str(v))


@pytest.mark.parametrize(
    "site, value", CASES, ids=[f"{site}={value_id(v)}" for site, v in CASES]
)
def test_out_of_range_ints_are_value_errors(site: str, value: int) -> None:
    with pytest.raises(ValueError) as info:
        SITES[site](value)
    assert not isinstance(info.value, OverflowError)
    if isinstance(info.value, peerlb.PeerlbError):
        assert info.value.code == "invalid-argument"
    assert len(str(info.value)) < 400, "the message prints the whole number"


@pytest.mark.parametrize("site", sorted(DURATIONS))
@pytest.mark.parametrize("value, error", [(float("nan"), ValueError), ("1", TypeError), (True, TypeError)])
def test_other_bad_durations(site: str, value: Any, error: type) -> None:
    with pytest.raises(error):
        SITES[site](value)


@pytest.mark.parametrize("site", sorted(NUMBERS) + sorted(INTS))
def test_wrong_types_of_numbers(site: str) -> None:
    with pytest.raises(TypeError):
        SITES[site]("1")
    with pytest.raises(TypeError):
        SITES[site](True)


class FloatRaises:
    def __float__(self) -> float:
        raise RuntimeError("no float here")


@pytest.mark.parametrize("site", sorted(NUMBERS))
def test_a_number_whose_float_raises_is_a_type_error(site: str) -> None:
    with pytest.raises(TypeError) as info:
        SITES[site](FloatRaises())
    # Sites that take any object with __float__ call it: its exception is the cause.
    if site.startswith("Upstream"):
        assert isinstance(info.value.__cause__, RuntimeError)
        assert "no float here" in str(info.value.__cause__)


def test_durations_still_take_every_documented_form() -> None:
    lst = running()
    for timeout in [0, 1, 0.5, 10**6, datetime.timedelta(milliseconds=5), float("inf"), 1e300]:
        lst.choose(timeout=timeout).finish("ok", timeout)
    assert peerlb.RetryBudget(ratio=1, min_per_sec=0, ttl=1).balance == 0


# A str with no UTF-8 form (a lone surrogate) is a bad value at every str site: the
# InvalidArgument of a bad peer id, never Python's UnicodeEncodeError.
SURROGATE = "\ud800"
STR_SITES: Dict[str, Callable[[Any], object]] = {
    "update(add) id": lambda v: running().update(add=[v]),
    "update(add) tuple id": lambda v: running().update(add=[(v, 1)]),
    "update(add) dict id": lambda v: running().update(add=[{"id": v}]),
    "update(remove)": lambda v: running().update(remove=[v]),
    "disable": lambda v: running().disable(v),
    "enable": lambda v: running().enable(v),
    "reset": lambda v: running().reset(v),
    "delete": lambda v: running().delete(v),
    "choose(shard_key)": lambda v: running().choose(shard_key=v),
    "PeerList(strategy)": lambda v: peerlb.PeerList(v),
    "PeerList(transport)": lambda v: peerlb.PeerList(transport=v),
    "StaticUpdater": lambda v: peerlb.StaticUpdater([v]),
    "FileUpdater(path)": lambda v: peerlb.FileUpdater(v),
    "DnsUpdater(name)": lambda v: peerlb.DnsUpdater(v),
    "DnsUpdater(record)": lambda v: peerlb.DnsUpdater("x.test", v),
    "DnsUpdater(nameserver)": lambda v: peerlb.DnsUpdater("x.test", nameserver=v),
    "EtcdUpdater(prefix)": lambda v: peerlb.EtcdUpdater(["http://127.0.0.1:1"], v),
    "Upstream(backends)": lambda v: peerlb.Upstream([v], check=lambda b: True, manual=True),
    "Upstream.up": lambda v: peerlb.Upstream([], check=lambda b: True, manual=True).up(v),
    "Upstream.down": lambda v: peerlb.Upstream([], check=lambda b: True, manual=True).down(v),
    "Upstream.score": lambda v: peerlb.Upstream([], check=lambda b: True, manual=True).score(v),
}


@pytest.mark.parametrize("site", sorted(STR_SITES))
def test_lone_surrogates_are_invalid_arguments(site: str) -> None:
    try:
        STR_SITES[site](SURROGATE)
    except peerlb.InvalidArgument:
        pass
    except peerlb.PeerlbError as e:  # e.g. a failed update listing the bad id among others
        assert all(x.code == "invalid-argument" for x in e.errors), e
    else:
        pytest.fail(f"{site} accepted a lone surrogate")
