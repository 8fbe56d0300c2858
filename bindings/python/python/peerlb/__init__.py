"""peerlb: client-side load balancing, from Python.

Choose the peer (``host:port``) for each outbound request and tell peerlb how it went::

    import peerlb

    with peerlb.PeerList("round-robin") as lst:
        lst.update(add=["127.0.0.1:8001", "127.0.0.1:8002"])
        with lst.choose(timeout=1.0) as choice:
            send_request(choice.peer)      # an exception here finishes it as "failure"

Or let peerlb balance inside the HTTP client you use (``pip install peerlb[httpx]`` or
``peerlb[requests]``)::

    import httpx, peerlb.httpx

    client = httpx.Client(transport=peerlb.httpx.Transport(lst))
    client.get("http://orders.internal/v1/orders")   # to a chosen peer, retried per the rule

The balancing itself is the Rust crate ``peerlb``; this package only translates.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Tuple, Union

from ._errors import (
    AlreadyFinished,
    AlreadyStarted,
    ChooseTimeout,
    Declined,
    InternalError,
    InvalidArgument,
    MultipleErrors,
    NoDeadline,
    NoPeerAvailable,
    NotStarted,
    Overloaded,
    PeerAlreadyInList,
    PeerlbError,
    PeerNotInList,
    RetryExhausted,
    SourceFailed,
    TransportFailed,
)
from ._peerlb import (
    ERROR_CODES,
    STRATEGIES,
    AdminServer,
    Binding,
    Choice,
    DnsUpdater,
    EtcdUpdater,
    XdsUpdater,
    FileUpdater,
    LoadReport,
    ManualClock,
    PeerEvent,
    PeerList,
    RequestRule,
    RetryBudget,
    Session,
    SessionEvent,
    StaticUpdater,
    Subscriber,
    Subscription,
    Upstream,
    __version__,
    deterministic_subset,
    metrics,
    serve_admin,
)
from ._retry import retrying
from ._types import AdminResult, ListInfo, PeerInfo, PriorityInfo, SubsetInfo

__all__ = [
    "PeerList",
    "Choice",
    "LoadReport",
    "Subscriber",
    "Upstream",
    "Transport",
    "StaticUpdater",
    "FileUpdater",
    "DnsUpdater",
    "EtcdUpdater",
    "XdsUpdater",
    "Binding",
    "PeerSpec",
    "AdminResult",
    "ListInfo",
    "PeerInfo",
    "PriorityInfo",
    "SubsetInfo",
    "deterministic_subset",
    "PeerEvent",
    "Session",
    "SessionEvent",
    "Subscription",
    "ManualClock",
    "RetryBudget",
    "RequestRule",
    "retrying",
    "metrics",
    "serve_admin",
    "AdminServer",
    "STRATEGIES",
    "ERROR_CODES",
    "__version__",
    # The exceptions: the same names as _errors.__all__ (a test checks they agree).
    "PeerlbError",
    "InvalidArgument",
    "AlreadyStarted",
    "NotStarted",
    "ChooseTimeout",
    "NoDeadline",
    "NoPeerAvailable",
    "PeerAlreadyInList",
    "PeerNotInList",
    "TransportFailed",
    "MultipleErrors",
    "SourceFailed",
    "RetryExhausted",
    "Declined",
    "AlreadyFinished",
    "InternalError",
    "Overloaded",
]

PeerSpec = Union[str, Tuple[str, int], Mapping[str, Union[str, int]]]
"""A peer to add: ``"id"``, ``("id", weight)`` or ``{"id": "id", "weight": weight}``."""


class Transport(Protocol):
    """What ``PeerList(transport=...)`` accepts: an object with these two methods.

    ``retain`` is called when the list starts using a peer and should report the peer's
    status through ``subscriber.set_status("available")`` (now, or later from any thread);
    until then the peer is unavailable. ``release`` is called when the list stops using it.
    An exception raised by either becomes a ``TransportFailed`` error of the list operation
    that called it. Both run on the thread that called into the list and may call back into
    the list. An optional ``name`` attribute names the transport in ``introspect()``.
    """

    def retain(self, peer_id: str, subscriber: Subscriber) -> object: ...

    def release(self, peer_id: str, subscriber: Subscriber) -> object: ...
