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


if __name__ == "__main__":
    print(sync_usage(), asyncio.run(async_usage()))
