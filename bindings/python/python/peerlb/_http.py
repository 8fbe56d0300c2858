"""What the HTTP integrations (``peerlb.httpx``, ``peerlb.requests``) share: the step that
chooses the next attempt's peer. (Their literal types, ``_Outcome`` and ``_AttemptError``,
live in ``_peerlb.pyi``: stubtest cannot compare a literal alias in a ``.py`` module.)"""

from __future__ import annotations

from typing import Optional, Tuple

from ._errors import PeerlbError
from ._peerlb import _RequestCall

__all__ = ["next_peer", "next_peer_async"]

_Peer = Tuple[str, str, int]
"""A chosen peer: its id, host and port."""


def next_peer(call: _RequestCall) -> Optional[_Peer]:
    """The next attempt's peer, or ``None`` when none can be chosen (the last attempt's
    response or exception is then the request's)."""
    try:
        return call.choose()
    except PeerlbError:
        return None


async def next_peer_async(call: _RequestCall) -> Optional[_Peer]:
    """``next_peer`` without blocking the event loop."""
    try:
        return await call.choose_async()
    except PeerlbError:
        return None
