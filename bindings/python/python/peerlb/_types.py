"""Small value types of peerlb's Python API."""

from __future__ import annotations

import enum
from typing import List, Literal, Optional, TypedDict

__all__ = ["AdminResult", "PeerInfo", "ListInfo"]


class AdminResult(str, enum.Enum):
    """What an admin operation (``disable``, ``enable``, ``reset``, ``delete``) did.

    A ``str`` enum: it compares equal to its value. A *failed* operation raises instead
    (``PeerNotInList`` for an unknown peer, ``InvalidArgument`` for a malformed id), with
    ``.code`` and ``.message``.
    """

    def __new__(cls, value: str) -> AdminResult:
        # The documented way to give a mixed-in enum its members; after the class is made,
        # ``AdminResult("success")`` looks the member up by value.
        member = str.__new__(cls, value)
        member._value_ = value
        return member

    SUCCESS = "success"
    """The operation changed the peer's state."""

    NO_ACTION_REQUIRED = "no-action-required"
    """The peer was already in the requested state; nothing changed."""

    def __str__(self) -> str:
        return str(self.value)


AdminResult.__module__ = "peerlb"


class PeerInfo(TypedDict):
    """One peer of ``PeerList.introspect()["peers"]`` and ``PeerList.list_backends()``."""

    id: str
    status: Literal["uninitialized", "unavailable", "connecting", "available"]
    pending: int
    weight: int
    admin: Literal["enabled", "disabled"]
    ejected: bool
    ejected_for_ms: int
    ejections: int
    consecutive_failures: int
    chosen: int
    failures: int


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
    peers: List[PeerInfo]


PeerInfo.__module__ = "peerlb"
ListInfo.__module__ = "peerlb"
