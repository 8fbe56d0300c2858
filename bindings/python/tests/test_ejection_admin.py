"""Outlier ejection options, the manual clock, admin operations and the new
introspection keys, through the Python API (bad input included)."""

from __future__ import annotations

import datetime
from typing import Any, List

import pytest

import peerlb
from peerlb import _errors


def running(*peers: str, **kwargs: Any) -> peerlb.PeerList:
    lst = peerlb.PeerList(shuffle=False, **kwargs)
    lst.update(add=list(peers))
    lst.start()
    return lst


def fail(lst: peerlb.PeerList, times: int) -> List[str]:
    """Chooses `times` times, finishing each as a failure; returns the peers chosen."""
    got = []
    for _ in range(times):
        c = lst.choose()
        got.append(c.peer)
        c.finish("failure")
    return got


def peer(lst: peerlb.PeerList, pid: str) -> peerlb.PeerInfo:
    for p in lst.list_backends():
        if p["id"] == pid:
            return p
    raise AssertionError(pid)


# --- errors module ----------------------------------------------------------------------


def test_error_names_are_one_list() -> None:
    # The package exports exactly the classes _errors defines, from its one __all__.
    assert set(_errors.__all__) == {"PeerlbError"} | {c.__name__ for c in _errors._BY_CODE.values()}
    for name in _errors.__all__:
        assert name in peerlb.__all__ and getattr(peerlb, name) is getattr(_errors, name)
    assert dict(peerlb.ERROR_CODES)["retry-exhausted"] == 12
    assert dict(peerlb.ERROR_CODES)["declined"] == 13
    assert peerlb.RetryExhausted.code == "retry-exhausted" and peerlb.Declined.code == "declined"


# --- ejection ---------------------------------------------------------------------------


def test_default_ejection_after_five_failures_and_restore_on_manual_clock() -> None:
    clock = peerlb.ManualClock()
    peers = [f"p{i}:1" for i in range(10)]
    lst = running(*peers, clock=clock)
    # p0 fails five times in a row (the other chooses in between succeed).
    for _ in range(5):
        for _ in range(len(peers)):
            c = lst.choose()
            c.finish("failure" if c.peer == "p0:1" else "ok")
    info = peer(lst, "p0:1")
    assert info["ejected"] and info["ejections"] == 1 and info["failures"] == 5
    assert info["ejected_for_ms"] == 30_000
    assert lst.introspect()["ejected"] == 1 and lst.introspect()["ejections"] == 1
    assert "p0:1" not in {lst.choose().peer for _ in range(30)}
    clock.advance(29.999)
    assert peer(lst, "p0:1")["ejected"]
    clock.advance(datetime.timedelta(milliseconds=1))
    assert not peer(lst, "p0:1")["ejected"]
    assert clock.elapsed == pytest.approx(30.0)
    assert "p0:1" in {lst.choose().peer for _ in range(10)}


def test_ejection_options_by_dict_and_off() -> None:
    clock = peerlb.ManualClock()
    lst = running("a", "b", "c", clock=clock, ejection={"failures": 2, "base_ms": 100, "max_percent": 50})
    assert fail(lst, 6) == ["a", "b", "c", "a", "b", "c"]
    info = lst.introspect()
    assert info["ejected"] == 1  # 50% of 3 is one peer
    assert [p["ejected"] for p in info["peers"]] == [True, False, False]
    assert info["peers"][0]["ejected_for_ms"] == 100
    clock.advance(0.1)
    assert lst.introspect()["ejected"] == 0

    off = running("a", "b", ejection=False)
    fail(off, 20)
    assert off.introspect()["ejected"] == 0 and off.introspect()["failures"] == 20
    # None and True are the default policy.
    for default in (None, True):
        lst = running("a", ejection=default)
        fail(lst, 5)
        assert lst.introspect()["ejections"] == 1


@pytest.mark.parametrize(
    "ejection, error",
    [
        ({"nope": 1}, peerlb.InvalidArgument),
        ({"failures": 0}, peerlb.InvalidArgument),
        ({"failures": -1}, peerlb.InvalidArgument),
        ({"failures": 2**40}, peerlb.InvalidArgument),
        ({"max_percent": 101}, peerlb.InvalidArgument),
        ({"base_ms": 1000, "max_ms": 10}, peerlb.InvalidArgument),
        ({"failures": "3"}, TypeError),
        ({"failures": 3.0}, TypeError),
        ({"failures": True}, TypeError),
        ({1: 3}, TypeError),
        ("failures=3", TypeError),
        (3, TypeError),
        ([("failures", 3)], TypeError),
    ],
)
def test_bad_ejection_options(ejection: Any, error: type) -> None:
    with pytest.raises(error):
        peerlb.PeerList(ejection=ejection)


@pytest.mark.parametrize("clock", ["manual", 1.0, object(), peerlb.RetryBudget])
def test_bad_clock(clock: Any) -> None:
    with pytest.raises(TypeError, match="ManualClock"):
        peerlb.PeerList(clock=clock)


@pytest.mark.parametrize(
    "seconds, error",
    [(-1, peerlb.InvalidArgument), (float("nan"), peerlb.InvalidArgument), ("1", TypeError), (True, TypeError), (None, TypeError)],
)
def test_bad_advance_leaves_the_clock(seconds: Any, error: type) -> None:
    clock = peerlb.ManualClock()
    with pytest.raises(error):
        clock.advance(seconds)
    assert clock.elapsed == 0.0


def test_advance_huge_saturates() -> None:
    clock = peerlb.ManualClock()
    clock.advance(float("inf"))
    clock.advance(1e300)
    assert clock.elapsed > 1e10
    assert "ManualClock" in repr(clock)


def test_declined_and_cancelled_never_eject() -> None:
    lst = running("a", ejection={"failures": 1})
    for outcome in ("declined", "cancelled"):
        for _ in range(10):
            lst.choose().finish(outcome)
    assert lst.introspect()["ejected"] == 0


# --- admin ------------------------------------------------------------------------------


def test_admin_results_and_effects() -> None:
    lst = running("a", "b")
    r = lst.disable("a")
    assert r is peerlb.AdminResult.SUCCESS and r == 1 and str(r) == "success"
    assert lst.disable("a") == 3 and str(lst.disable("a")) == "no-action-required"
    assert lst.disable("a") is peerlb.AdminResult.NO_ACTION_REQUIRED
    assert {lst.choose().peer for _ in range(6)} == {"b"}
    assert peer(lst, "a")["admin"] == "disabled" and lst.introspect()["disabled"] == 1
    # Disabled survives remove + add.
    lst.update(remove=["a"])
    lst.update(add=["a"])
    assert peer(lst, "a")["admin"] == "disabled"
    assert lst.enable("a") == peerlb.AdminResult.SUCCESS
    assert lst.enable("a") == peerlb.AdminResult.NO_ACTION_REQUIRED
    assert lst.reset("a") == peerlb.AdminResult.NO_ACTION_REQUIRED
    assert lst.delete("b") == peerlb.AdminResult.SUCCESS
    assert [p["id"] for p in lst.list_backends()] == ["a"]
    assert lst.list_backends() == lst.introspect()["peers"]


def test_reset_clears_an_ejection() -> None:
    lst = running("a", "b", ejection={"failures": 1})
    assert fail(lst, 1) == ["a"]
    assert peer(lst, "a")["ejected"]
    assert lst.reset("a") == peerlb.AdminResult.SUCCESS
    info = peer(lst, "a")
    assert not info["ejected"] and info["ejections"] == 0 and info["consecutive_failures"] == 0


@pytest.mark.parametrize("op", ["disable", "enable", "reset", "delete", "failover"])
def test_admin_failures_raise_and_leave_the_list(op: str) -> None:
    lst = running("a", "b")
    lst.disable("b")
    before = lst.introspect()
    with pytest.raises(peerlb.PeerNotInList) as info:
        getattr(lst, op)("zz")
    assert info.value.code == "peer-not-in-list" and info.value.peer == "zz"
    assert "zz" in info.value.message
    for bad_id in ("", "x" * 1025, "a\0b"):
        with pytest.raises(peerlb.InvalidArgument):
            getattr(lst, op)(bad_id)
    for bad_type in (None, 1, b"a", ["a"]):
        with pytest.raises(TypeError, match="peer must be a str"):
            getattr(lst, op)(bad_type)
    with pytest.raises(TypeError):
        getattr(lst, op)()
    assert lst.introspect() == before


def test_admin_on_an_idle_list() -> None:
    lst = peerlb.PeerList(shuffle=False)
    lst.update(add=["a"])
    assert lst.disable("a") == peerlb.AdminResult.SUCCESS
    assert lst.list_backends()[0]["status"] == "uninitialized"
    assert lst.delete("a") == peerlb.AdminResult.SUCCESS and len(lst) == 0


def test_introspection_keys() -> None:
    lst = running("a")
    lst.choose().finish("failure")
    info = lst.introspect()
    assert set(info) == {
        "strategy", "transport", "state", "summary", "available", "total", "panic",
        "ejected", "disabled", "chosen", "failures", "ejections", "sessions", "priorities",
        "peers", "name", "pending", "max_pending", "max_pending_per_peer", "overloaded",
        "subset",
    }
    assert set(info["peers"][0]) == {
        "id", "status", "pending", "weight", "zone", "priority", "admin", "ejected", "ejected_for_ms",
        "ejections", "consecutive_failures", "chosen", "failures", "sessions",
    }
    assert (info["chosen"], info["failures"], info["panic"]) == (1, 1, False)
    assert info["peers"][0]["consecutive_failures"] == 1


def test_new_types_reject_bad_construction() -> None:
    with pytest.raises(TypeError):
        peerlb.ManualClock(5)  # type: ignore[call-arg]
    for cls in (peerlb.PeerEvent, peerlb.Subscription):
        with pytest.raises(TypeError):
            cls()
    with pytest.raises(ValueError):
        peerlb.AdminResult("succeeded")
    with pytest.raises(ValueError):
        peerlb.AdminResult(2)
    assert peerlb.AdminResult("success") is peerlb.AdminResult.SUCCESS
    assert peerlb.AdminResult(4) is peerlb.AdminResult.FAILED
