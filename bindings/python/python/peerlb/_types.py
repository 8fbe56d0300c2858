"""Small value types of peerlb's Python API."""

from __future__ import annotations

import enum
from typing import List, Literal, Optional, TypedDict

__all__ = ["AdminResult", "PeerInfo", "ListInfo"]


class AdminResult(enum.IntEnum):
    """What an admin operation (``disable``, ``enable``, ``reset``, ``delete``,
    ``failover``) did, with a WebSocket balancer's numbers: ``SUCCESS`` is 1,
    ``NO_ACTION_REQUIRED`` 3 and ``FAILED`` 4 (its ``ResultSuccess``,
    ``ResultNoActionReqd``, ``ResultFailed``).

    An ``IntEnum``: it compares equal to its number (``lst.disable(p) == 1``); ``str()``
    gives the name the other surfaces use (``"success"``, ``"no-action-required"``,
    ``"failed"``). A *failed* operation raises instead (``PeerNotInList`` for an unknown
    peer, ``InvalidArgument`` for a malformed id), with ``.code`` and ``.message``;
    ``FAILED`` is the number of such a failure (the ``code`` of ``add_backend``'s failed
    answers).
    """

    SUCCESS = 1
    """The operation changed the peer's state."""

    NO_ACTION_REQUIRED = 3
    """The peer was already in the requested state; nothing changed."""

    FAILED = 4
    """The operation failed (it raised)."""

    def __str__(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def _missing_(cls, value: object) -> Optional[AdminResult]:
        # ``AdminResult("success")``: also found by the name the other surfaces use.
        for member in cls:
            if str(member) == value:
                return member
        return None


AdminResult.__module__ = "peerlb"


class PeerInfo(TypedDict):
    """One peer of ``PeerList.introspect()["peers"]`` and ``PeerList.list_backends()``."""

    id: str
    status: Literal["uninitialized", "unavailable", "connecting", "available"]
    pending: int
    weight: int
    zone: Optional[str]
    priority: int
    admin: Literal["enabled", "disabled"]
    ejected: bool
    ejected_for_ms: int
    ejections: int
    consecutive_failures: int
    chosen: int
    failures: int
    sessions: int


class PriorityInfo(TypedDict):
    """One priority level of ``PeerList.introspect()["priorities"]``."""

    priority: int
    load: int
    healthy: int
    enabled: int
    panic: bool


class SubsetInfo(TypedDict):
    """``PeerList.introspect()["subset"]`` of a list made with ``subset=``."""

    size: int
    client: int
    offered: int


class ListInfo(TypedDict):
    """What ``PeerList.introspect()`` returns."""

    strategy: str
    transport: str
    state: Literal["running", "idle"]
    summary: str
    available: int
    total: int
    panic: bool
    ejected: int
    disabled: int
    chosen: int
    failures: int
    ejections: int
    name: str
    pending: int
    max_pending: Optional[int]
    max_pending_per_peer: Optional[int]
    overloaded: int
    sessions: int
    subset: Optional[SubsetInfo]
    priorities: List[PriorityInfo]
    peers: List[PeerInfo]


PeerInfo.__module__ = "peerlb"
ListInfo.__module__ = "peerlb"
PriorityInfo.__module__ = "peerlb"
SubsetInfo.__module__ = "peerlb"
