"""Sessions, the session listener, the backend administrator's data calls and yarpc's
queries from Python, beyond the shared scenarios: context managers and garbage collection,
the asyncio forms, waits that release the GIL, callbacks that raise or re-enter, and bad
arguments."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import threading
import time
from typing import Any, List

import pytest

import peerlb


def running(*peers: str, **kwargs: Any) -> peerlb.PeerList:
    lst = peerlb.PeerList(shuffle=False, **kwargs)
    lst.update(add=list(peers))
    lst.start()
    return lst


def pending(lst: peerlb.PeerList, peer: str) -> int:
    return next(p["pending"] for p in lst.list_backends() if p["id"] == peer)


def test_a_session_is_a_context_manager_and_counts_as_pending() -> None:
    lst = running("a", "b", strategy="fewest-pending")
    with lst.open_session(timeout=1) as s:
        assert isinstance(s, peerlb.Session)
        assert (s.id, s.peer, s.bound, s.closed, s.failovers) == (1, "a", True, False, 0)
        assert pending(lst, "a") == 1 and lst.introspect()["sessions"] == 1
        assert lst.open_session().peer == "b"  # fewest connections; dropped at once
        assert "Session 1" in repr(s)
    assert s.closed and not s.bound and pending(lst, "a") == 0
    with pytest.raises(peerlb.AlreadyFinished):
        s.close()


def test_dropping_the_last_reference_closes_the_session() -> None:
    lst = running("a")
    events: List[str] = []
    lst.subscribe_sessions(lambda e: events.append(f"{e} {e.reason}"))
    s = lst.open_session()
    del s
    gc.collect()
    assert events == ["created 1 a opened", "terminated 1 a closed"]
    assert pending(lst, "a") == 0


def test_failover_moves_and_errors_carry_the_peer_and_code() -> None:
    lst = running("a", "b")
    s = lst.open_session()
    assert s.failover("reset", remote_code=1006) == "b" == s.peer
    assert s.failovers == 1
    lst.update(remove=["a"])
    with pytest.raises(peerlb.NoPeerAvailable) as info:
        s.failover(reason="abnormal closure", remote_code=1011)
    assert info.value.peer == "b" and info.value.remote_code == 1011
    assert "abnormal closure" in str(info.value)
    assert not s.closed and not s.bound
    with pytest.raises(peerlb.ChooseTimeout) as timeout:
        lst.update(remove=["b"])
        s.failover(timeout=0.02)
    assert timeout.value.peer is None  # it was bound to no peer any more


def test_a_failover_waits_without_the_gil() -> None:
    lst = running("a")
    s = lst.open_session()
    ticks = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    adder = threading.Timer(0.2, lambda: lst.update(add=["b"]))
    adder.start()
    try:
        assert s.failover("reset", timeout=10) == "b"
    finally:
        stop.set()
        counter.join()
        adder.join()
    assert len(ticks) > 10  # the other thread ran while the failover waited


def test_decline_returns_the_error_and_ends_the_session() -> None:
    lst = running("a", ejection={"failures": 1})
    s = lst.open_session()
    error = s.decline("unauthorized", remote_code=401)
    assert isinstance(error, peerlb.Declined) and isinstance(error, peerlb.PeerlbError)
    assert (error.code, error.peer, error.remote_code) == ("declined", "a", 401)
    assert s.closed and lst.introspect()["ejected"] == 0
    with pytest.raises(peerlb.AlreadyFinished):
        s.decline("again")
    with pytest.raises(peerlb.AlreadyFinished):
        s.ok()
    with pytest.raises(peerlb.AlreadyFinished):
        s.failover()


def test_admin_failover_and_delete_set_the_flag() -> None:
    lst = running("a", "b")
    heard: List[peerlb.SessionEvent] = []
    sub = lst.subscribe_sessions(heard.append)
    s = lst.open_session()
    assert lst.failover("a") == peerlb.AdminResult.SUCCESS == 1
    assert lst.failover("a") is peerlb.AdminResult.NO_ACTION_REQUIRED
    assert s.failover_requested and s.peer == "a" and s.bound
    event = heard[-1]
    assert (event.kind, event.session, event.peer) == ("failover-requested", 1, "a")
    assert event.reason == "failover requested by admin"
    assert event == heard[-1] and hash(event) == hash(heard[-1])
    assert s.failover() == "b" and not s.failover_requested
    assert lst.delete("b") == peerlb.AdminResult.SUCCESS
    assert s.failover_requested
    sub.cancel()


def test_listener_exceptions_are_unraisable_and_callbacks_may_reenter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lst = running("a", "b")
    unraisable: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    lst.subscribe_sessions(lambda e: 1 / 0)
    seen: List[str] = []

    def reenter(event: peerlb.SessionEvent) -> None:
        seen.append(f"{event} {json.loads(lst.backend_config(event.peer))['sessions']}")

    lst.subscribe_sessions(reenter)
    with lst.open_session():
        pass
    assert seen == ["created 1 a 1", "terminated 1 a 0"]
    assert len(unraisable) == 2 and isinstance(unraisable[0].exc_value, ZeroDivisionError)
    with pytest.raises(TypeError, match="callable"):
        lst.subscribe_sessions(5)  # type: ignore[arg-type]


def test_async_forms() -> None:
    lst = running("a")

    async def main() -> None:
        s = await lst.open_session_async(timeout=1)
        assert s.peer == "a"
        asyncio.get_running_loop().call_later(0.05, lambda: lst.update(add=["b"]))
        assert await s.failover_async("reset", timeout=10) == "b"
        # A cancelled wait leaves the session open and bound to no peer.
        lst.update(remove=["a"])
        waiting = s.failover_async("again", 10)
        await asyncio.sleep(0.02)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not s.closed and not s.bound
        s.close()

    asyncio.run(main())


def test_async_open_waits_and_fails_like_choose() -> None:
    async def main() -> None:
        lst = running()
        with pytest.raises(peerlb.NoDeadline):
            await lst.open_session_async()
        with pytest.raises(peerlb.ChooseTimeout):
            await lst.open_session_async(timeout=0.02)
        asyncio.get_running_loop().call_later(0.05, lambda: lst.update(add=["x"]))
        s = await lst.open_session_async(timeout=10)
        assert s.peer == "x"
        s.close()

    asyncio.run(main())


def test_bad_arguments_raise_and_change_nothing() -> None:
    lst = running("a", "b")
    s = lst.open_session()
    for bad in ("1006", 1.5, True):
        with pytest.raises(TypeError):
            s.failover(remote_code=bad)  # type: ignore[arg-type]
    with pytest.raises(peerlb.InvalidArgument):
        s.failover(remote_code=2**80)
    with pytest.raises(TypeError):
        s.failover(reason=5)  # type: ignore[arg-type]
    with pytest.raises(peerlb.InvalidArgument):
        s.failover(timeout=-1)
    assert s.bound and s.peer == "a" and s.failovers == 0
    with pytest.raises(TypeError):
        lst.open_session(timeout="soon")  # type: ignore[arg-type]
    for bad_peer in (None, 3, b"a"):
        with pytest.raises(TypeError):
            lst.failover(bad_peer)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            lst.available(bad_peer)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            lst.backend_config(bad_peer)  # type: ignore[arg-type]
    with pytest.raises(peerlb.PeerNotInList):
        lst.backend_config("zz")
    for bad_data in (5, None, ["a"]):
        with pytest.raises(TypeError):
            lst.add_backend(bad_data)  # type: ignore[arg-type]
    with pytest.raises(peerlb.InvalidArgument):
        lst.add_backend(b"\xff{")
    assert len(lst) == 2 and lst.introspect()["sessions"] == 1
    with pytest.raises(TypeError):
        peerlb.Session()  # type: ignore[call-arg]


def test_add_backend_takes_text_bytes_or_a_dict() -> None:
    lst = peerlb.PeerList()
    assert json.loads(lst.add_backend('{"id": "a", "weight": 2}')) == {
        "result": "success", "code": 1, "id": "a"
    }
    assert json.loads(lst.add_backend(b'{"id": "b"}'))["code"] == peerlb.AdminResult.SUCCESS
    answer = json.loads(lst.add_backend({"id": "c", "weight": 3, "url": "ws://c"}))
    assert answer["ignored"] == ["url"]
    failed = json.loads(lst.add_backend("{not json"))
    assert (failed["result"], failed["code"], failed["error"]) == ("failed", 4, "invalid-argument")
    assert peerlb.AdminResult(failed["code"]) is peerlb.AdminResult.FAILED
    assert [(p["id"], p["weight"]) for p in lst.list_backends()] == [("a", 2), ("b", 1), ("c", 3)]
    config = json.loads(lst.backend_config("c"))
    assert config["weight"] == 3 and config["sessions"] == 0


def test_queries_and_capacity() -> None:
    assert peerlb.PeerList().capacity == 10
    lst = peerlb.PeerList(capacity=500)
    assert lst.capacity == 500
    lst.update(add=["a", "b"])
    assert lst.uninitialized("a") and not lst.available("a")
    assert (lst.num_available(), lst.num_unavailable(), lst.num_uninitialized()) == (0, 0, 2)
    lst.start()
    lst.disable("b")
    assert lst.available("a") and not lst.available("b") and not lst.uninitialized("a")
    assert (lst.num_available(), lst.num_unavailable(), lst.num_uninitialized()) == (1, 1, 0)
    assert lst.peers() == ["a", "b"]
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.PeerList(capacity=-1)
    with pytest.raises(TypeError):
        peerlb.PeerList(capacity="10")  # type: ignore[arg-type]


def test_retry_reports_remote_codes() -> None:
    lst = running("a", "b")

    class Unavailable(Exception):
        remote_code = 503

    def attempt(peer: str) -> None:
        if peer == "a":
            raise Unavailable("down")
        raise peerlb.Declined("no", remote_code=429)

    with pytest.raises(peerlb.Declined) as info:
        lst.retry(attempt)
    assert (info.value.peer, info.value.remote_code) == ("b", 429)

    def always(peer: str) -> None:
        raise Unavailable(peer)

    with pytest.raises(peerlb.RetryExhausted) as exhausted:
        lst.retry(always, max_attempts=2)
    assert exhausted.value.peer in ("a", "b") and exhausted.value.remote_code == 503
