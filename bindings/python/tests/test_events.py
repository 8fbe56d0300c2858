"""Peer events: subscribe, cancel, callbacks that raise or call back into the list."""

from __future__ import annotations

import gc
import sys
import threading
import weakref
from typing import Any, List

import pytest

import peerlb


def kinds(events: List[peerlb.PeerEvent]) -> List[str]:
    return [str(e) for e in events]


def test_lifecycle_events_in_order() -> None:
    clock = peerlb.ManualClock()
    lst = peerlb.PeerList(shuffle=False, clock=clock, ejection={"failures": 1, "base_ms": 1000})
    got: List[peerlb.PeerEvent] = []
    sub = lst.subscribe(got.append)
    assert sub.active and "active" in repr(sub)
    lst.update(add=["a", "b"])
    lst.start()
    lst.disable("b")
    lst.enable("b")
    lst.choose().finish("failure")
    clock.advance(1.0)
    lst.update(remove=["b"])
    lst.stop()
    assert kinds(got) == [
        "added a", "added b", "available a", "available b", "disabled b", "enabled b",
        "ejected a", "restored a", "removed b", "unavailable a",
    ]
    ejected = got[6]
    assert (ejected.kind, ejected.peer) == ("ejected", "a")
    assert "1 consecutive failure" in ejected.detail and "ejected" in repr(ejected)
    assert got[0] == got[0] and got[0] != got[1] and len({got[0], got[0]}) == 1
    assert sub.cancel() is True and sub.cancel() is False and not sub.active
    again = lst.subscribe(lambda e: None)
    assert again.unsubscribe() is True and again.unsubscribe() is False
    assert not again.active
    lst.update(add=["c"])
    assert len(got) == 10


def test_subscription_outlives_its_handle_and_context_manager_cancels() -> None:
    lst = peerlb.PeerList()
    kept: List[str] = []
    lst.subscribe(lambda e: kept.append(str(e)))  # handle dropped at once
    gc.collect()
    scoped: List[str] = []
    with lst.subscribe(lambda e: scoped.append(str(e))) as sub:
        lst.update(add=["a"])
    assert not sub.active
    lst.update(add=["b"])
    assert kept == ["added a", "added b"] and scoped == ["added a"]


@pytest.mark.parametrize("bad", [None, 1, "print", [print]])
def test_subscribe_needs_a_callable(bad: Any) -> None:
    lst = peerlb.PeerList()
    with pytest.raises(TypeError, match="callable"):
        lst.subscribe(bad)
    lst.update(add=["a"])
    assert len(lst) == 1


def test_a_raising_subscriber_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    lst = peerlb.PeerList(shuffle=False)
    others: List[str] = []

    def boom(e: peerlb.PeerEvent) -> None:
        raise ValueError(f"boom on {e}")

    lst.subscribe(boom)
    lst.subscribe(lambda e: others.append(str(e)))
    lst.update(add=["a", "b"])  # does not raise
    lst.start()
    assert others == ["added a", "added b", "available a", "available b"]
    assert [str(r.exc_value) for r in reported] == [
        "boom on added a", "boom on added b", "boom on available a", "boom on available b",
    ]
    assert isinstance(reported[0].exc_value, ValueError)
    assert "peerlb event subscriber" in str(reported[0].err_msg or reported[0].object)
    assert len(lst) == 2 and lst.choose().peer in ("a", "b")


def test_base_exceptions_in_subscribers_are_contained_too(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    lst = peerlb.PeerList()

    def interrupt(e: peerlb.PeerEvent) -> None:
        raise KeyboardInterrupt

    lst.subscribe(interrupt)
    lst.update(add=["a"])
    assert len(lst) == 1 and isinstance(reported[0].exc_value, KeyboardInterrupt)


def test_a_subscriber_may_call_back_into_the_list() -> None:
    lst = peerlb.PeerList(shuffle=False)
    seen: List[str] = []

    def react(e: peerlb.PeerEvent) -> None:
        seen.append(f"{e} (total {lst.introspect()['total']})")
        if e.kind == "added" and e.peer == "a":
            lst.update(add=["a-twin"])  # its own event comes after this one
        if e.kind == "available" and e.peer == "a-twin":
            lst.disable("a")
            with lst.choose() as c:
                assert c.peer == "a-twin"

    lst.subscribe(react)
    lst.update(add=["a"])
    lst.start()
    assert seen == [
        "added a (total 1)",
        "added a-twin (total 2)",
        "available a (total 2)",
        "available a-twin (total 2)",
        "disabled a (total 2)",
    ]


def test_events_from_another_thread() -> None:
    lst = peerlb.PeerList()
    got: List[str] = []
    threads: List[str] = []

    def on(e: peerlb.PeerEvent) -> None:
        got.append(str(e))
        threads.append(threading.current_thread().name)

    lst.subscribe(on)
    t = threading.Thread(target=lambda: lst.update(add=["a"]), name="updater")
    t.start()
    t.join()
    assert got == ["added a"] and threads == ["updater"]


def test_a_list_and_a_subscriber_pointing_back_are_collected() -> None:
    class Holder:
        def __init__(self) -> None:
            self.lst = peerlb.PeerList()
            self.lst.subscribe(self.on)

        def on(self, e: peerlb.PeerEvent) -> None:
            pass

    h = Holder()
    ref = weakref.ref(h.lst)
    del h
    gc.collect()
    assert ref() is None


def test_a_subscriber_may_cancel_itself_and_subscribe_others() -> None:
    lst = peerlb.PeerList(shuffle=False)
    first: List[str] = []
    late: List[str] = []
    subs: List[peerlb.Subscription] = []

    def once(e: peerlb.PeerEvent) -> None:
        first.append(str(e))
        subs[0].cancel()
        subs.append(lst.subscribe(lambda e: late.append(str(e))))

    subs.append(lst.subscribe(once))
    lst.update(add=["a", "b"])
    assert first == ["added a"]
    assert late == ["added b"]  # subscribed while "added a" was delivered
    assert not subs[0].active and subs[1].active


EXIT_SCRIPT = r"""
import threading, peerlb
lst = peerlb.PeerList(ejection={"failures": 1, "base_ms": 1, "max_percent": 100})
lst.update(add=["a", "b", "c", "d"])
lst.start()
seen = []
lst.subscribe(lambda e: seen.append(e.kind))
def churn():
    while True:
        try:
            lst.choose(timeout=1).finish("failure")
        except peerlb.PeerlbError:
            pass
for _ in range(2):
    threading.Thread(target=churn, daemon=True).start()
while "restored" not in seen:
    threading.Event().wait(0.001)
print("exiting with timers firing")
"""


def test_interpreter_exit_while_library_threads_deliver_events() -> None:
    import subprocess

    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "exiting with timers firing" in done.stdout
        assert "Fatal" not in done.stderr and "panicked" not in done.stderr, done.stderr


def test_an_object_keeping_its_subscription_is_collected() -> None:
    # object -> Subscription -> list -> callback (bound method) -> object: a cycle the
    # garbage collector must see through the kept Subscription.
    class Watcher:
        def __init__(self, lst: peerlb.PeerList) -> None:
            self.sub = lst.subscribe(self.on_event)

        def on_event(self, event: peerlb.PeerEvent) -> None:
            pass

    lst = peerlb.PeerList()
    watcher = Watcher(lst)
    ref = weakref.ref(watcher)
    del watcher
    del lst
    gc.collect()
    gc.collect()
    assert ref() is None
