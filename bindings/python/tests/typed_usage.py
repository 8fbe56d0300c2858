"""Typical use of peerlb, checked with ``mypy --strict`` (and run by test_typing.py)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Dict, List

import peerlb


class StaticTransport:
    """A transport satisfying the ``peerlb.Transport`` protocol."""

    name = "static"

    def __init__(self) -> None:
        self.subscribers: Dict[str, peerlb.Subscriber] = {}

    def retain(self, peer_id: str, subscriber: peerlb.Subscriber) -> None:
        self.subscribers[peer_id] = subscriber
        accepted: bool = subscriber.set_status("available")
        assert accepted

    def release(self, peer_id: str, subscriber: peerlb.Subscriber) -> None:
        self.subscribers.pop(peer_id, None)


def sync_usage() -> List[str]:
    transport: peerlb.Transport = StaticTransport()
    specs: List[peerlb.PeerSpec] = ["a:1", ("b:2", 2), {"id": "c:3", "weight": 1}]
    chosen: List[str] = []
    with peerlb.PeerList("round-robin", shuffle=False, seed=1, transport=transport) as lst:
        lst.update(add=specs, remove=[])
        with lst.choose(timeout=1.0) as choice:
            chosen.append(choice.peer)
        c = lst.choose(timeout=datetime.timedelta(seconds=1), shard_key=b"user-1")
        c.finish("failure", latency=0.003)
        chosen.append(c.peer)
        try:
            c.finish()
        except peerlb.AlreadyFinished as again:
            assert isinstance(again, RuntimeError) and again.code == "already-finished"
        lst.choose().cancel()
        spec: str = peerlb.PeerList("hash-ring:ketama?bounded=1.25", shuffle=None).strategy
        assert spec == "hash-ring?bounded=1.25"
        info = lst.introspect()
        total: int = info["total"]
        assert total == 3 and len(lst) == 3 and lst.running
    try:
        lst.choose()
    except peerlb.NotStarted as e:
        code: str = e.code
        errors: List[peerlb.PeerlbError] = e.errors
        assert code == "not-started" and errors == [e]
    return chosen


async def async_usage() -> str:
    lst = peerlb.PeerList(fail_fast=False)
    lst.update(add=["x:1"])
    lst.start()
    try:
        choice = await lst.choose_async(timeout=0.5)
    except peerlb.ChooseTimeout:
        return "timeout"
    with choice:
        return choice.peer


def resilience_usage() -> List[str]:
    clock = peerlb.ManualClock()
    lst = peerlb.PeerList(shuffle=False, clock=clock, ejection={"failures": 3, "base_ms": 1000})
    seen: List[str] = []

    def on_event(event: peerlb.PeerEvent) -> None:
        seen.append(f"{event.kind} {event.peer} {event.detail}".strip())

    sub: peerlb.Subscription = lst.subscribe(on_event)
    lst.update(add=["a:1", "b:1"])
    lst.start()
    result: peerlb.AdminResult = lst.disable("a:1")
    assert result == peerlb.AdminResult.SUCCESS and lst.enable("a:1") == 1
    backends: List[peerlb.PeerInfo] = lst.list_backends()
    ejected: bool = backends[0]["ejected"]
    info: peerlb.ListInfo = lst.introspect()
    assert not ejected and info["panic"] is False
    budget = peerlb.RetryBudget(ratio=0.5, min_per_sec=1, ttl=10, clock=clock)

    def fetch(peer: str) -> int:
        return len(peer)

    n: int = lst.retry(fetch, max_attempts=2, timeout=1.0, budget=budget, shard_key="k")

    @peerlb.retrying(lst, max_attempts=2)
    def get(peer: str, path: str) -> str:
        return peer + path

    url: str = get("/x")
    clock.advance(datetime.timedelta(seconds=1))
    try:
        lst.retry(lambda peer: 1 / 0)
    except peerlb.RetryExhausted as e:
        seen.append(e.code)
    assert sub.unsubscribe() and n == 3 and url == "a:1/x"
    default_budget = peerlb.RetryBudget(ratio=None, min_per_sec=None, ttl=None)
    assert default_budget.balance > 0
    return seen


async def async_retry_usage() -> str:
    lst = peerlb.PeerList()
    lst.update(add=["x:1"])
    lst.start()

    async def fetch(peer: str) -> str:
        return peer

    @peerlb.retrying(lst)
    async def get(peer: str, suffix: str) -> str:
        return peer + suffix

    return await lst.retry_async(fetch, timeout=1.0) + await get("!")


def session_usage() -> List[str]:
    lst = peerlb.PeerList(shuffle=False, capacity=4)
    lst.update(add=["a:1", "b:1"])
    lst.start()
    heard: List[str] = []

    def on_session(event: peerlb.SessionEvent) -> None:
        heard.append(f"{event.kind} {event.session} {event.peer} {event.reason}")

    sub: peerlb.Subscription = lst.subscribe_sessions(on_session)
    with lst.open_session(timeout=1.0, shard_key="user-7") as session:
        peer: str = session.failover("reset", timeout=1.0, remote_code=1006)
        session.ok()
        moved: bool = session.failover_requested
        assert peer == session.peer and not moved and session.id == 1
    result: peerlb.AdminResult = lst.failover("a:1")
    answer: str = lst.add_backend({"id": "c:1", "weight": 2})
    config: str = lst.backend_config("c:1")
    up: bool = lst.available("c:1") and not lst.uninitialized("c:1")
    counts = (lst.num_available(), lst.num_unavailable(), lst.num_uninitialized())
    retained: List[str] = lst.peers()
    declined: BaseException = lst.open_session().decline("unauthorized", remote_code=401)
    assert result is peerlb.AdminResult.NO_ACTION_REQUIRED and up and counts == (3, 0, 0)
    assert "success" in answer and '"weight":2' in config and lst.capacity == 4
    assert len(retained) == 3 and isinstance(declined, peerlb.Declined)
    sub.cancel()
    return heard


async def async_session_usage() -> str:
    lst = peerlb.PeerList()
    lst.update(add=["x:1", "y:1"])
    lst.start()
    session = await lst.open_session_async(timeout=1.0)
    moved: str = await session.failover_async("gone", 1.0)
    session.close()
    return moved


if __name__ == "__main__":
    print(sync_usage(), asyncio.run(async_usage()))
    print(resilience_usage(), asyncio.run(async_retry_usage()))
    print(session_usage(), asyncio.run(async_session_usage()))
