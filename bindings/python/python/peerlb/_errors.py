"""The exceptions of peerlb: ``PeerlbError`` and one subclass per core error code.

Every exception has ``.code`` (the core's kebab-case code, e.g. ``"no-peer-available"``) and
``.errors`` (the individual errors of a combined failure, or ``[self]``). Errors about one
peer carry ``.peer``; transport failures also ``.operation`` (``"retain"``/``"release"``).
Errors about a remote system (a declined session or attempt, a failover or retry that gave
up) carry its ``.peer`` and ``.remote_code``, the code it gave (an HTTP status, a WebSocket
close code) or ``None`` (a WebSocket balancer's ``RemoteSystemError.GetID()``/``Code()``).
"""

from __future__ import annotations

from typing import ClassVar, Dict, List, Optional, Sequence, Type

# The exception names; the package's __all__ repeats them (static, for type checkers), and
# a test checks both name exactly the classes below and that every core code has one.
__all__ = [
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


class PeerlbError(Exception):
    """Base class of every error peerlb raises for a core error code."""

    code: ClassVar[str] = ""
    """The stable, kebab-case error code (``ErrorCode::as_str()`` in core)."""

    peer: Optional[str]
    """The peer the error is about, if it is about one."""

    operation: Optional[str]
    """For transport failures: ``"retain"`` or ``"release"``."""

    remote_code: Optional[int]
    """For errors about a remote system: the code it gave (HTTP status, WebSocket close
    code), if any. Raise ``Declined(..., remote_code=401)`` (or any exception with a
    ``remote_code`` attribute) from a function under ``PeerList.retry`` to report one."""

    def __init__(
        self,
        message: str = "",
        *,
        errors: Optional[Sequence[PeerlbError]] = None,
        peer: Optional[str] = None,
        operation: Optional[str] = None,
        remote_code: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self._errors: Optional[List[PeerlbError]] = list(errors) if errors else None
        self.peer = peer
        self.operation = operation
        self.remote_code = remote_code

    @property
    def errors(self) -> List[PeerlbError]:
        """The individual errors of a combined failure (in order), else ``[self]``."""
        return list(self._errors) if self._errors is not None else [self]

    @property
    def message(self) -> str:
        """The human-readable message (same as ``str(error)``)."""
        return str(self.args[0]) if self.args else ""


class InvalidArgument(PeerlbError, ValueError):
    """A malformed argument: bad peer id, unknown strategy, bad option value."""

    code = "invalid-argument"


class AlreadyStarted(PeerlbError):
    """``start()`` on a list that is already running."""

    code = "already-started"


class NotStarted(PeerlbError):
    """``stop()`` or ``choose()`` on a list that is not running (or stopped while waiting)."""

    code = "not-started"


class ChooseTimeout(PeerlbError, TimeoutError):
    """``choose()`` waited until its timeout without an available peer."""

    code = "timeout"


class NoDeadline(PeerlbError):
    """``choose()`` found no available peer and was given no timeout to wait for one."""

    code = "no-deadline"


class NoPeerAvailable(PeerlbError):
    """``choose()`` found no available peer on a ``fail_fast`` list."""

    code = "no-peer-available"


class PeerAlreadyInList(PeerlbError):
    """``update()`` tried to add a peer that is already in the list."""

    code = "peer-already-in-list"


class PeerNotInList(PeerlbError):
    """``update()`` tried to remove a peer that is not in the list."""

    code = "peer-not-in-list"


class TransportFailed(PeerlbError):
    """A transport's ``retain`` or ``release`` failed (raised an exception)."""

    code = "transport-failed"


class MultipleErrors(PeerlbError):
    """Several failures of different kinds, reported together (see ``.errors``)."""

    code = "multiple-errors"


class SourceFailed(PeerlbError):
    """An updater's source failed (missing file, bad line, DNS failure); the last good
    set is kept."""

    code = "source-failed"


class RetryExhausted(PeerlbError):
    """A retried call gave up: every attempt failed, or the retry budget refused a retry.
    The message lists each attempt's error (``retry attempts exceeded (e1; e2; e3)``,
    ``retry budget exhausted (e1)``); ``__cause__`` is the last attempt's exception."""

    code = "retry-exhausted"


class Declined(PeerlbError):
    """The peer declined the request on purpose (e.g. overload).

    Raise it from a function under ``PeerList.retry`` to stop retrying at once without
    counting the attempt against the peer; the call then raises a ``Declined`` naming the
    peer (``.peer``, and your ``remote_code=`` as ``.remote_code``), with yours as
    ``__cause__``. ``Session.decline`` returns one too."""

    code = "declined"


class AlreadyFinished(PeerlbError, RuntimeError):
    """A choice (or a session) was finished a second time (``Choice.finish`` after ``finish``,
    ``cancel``/``release`` or the end of its ``with`` block). The first finish stands; the
    second changes nothing. Also a ``RuntimeError``, which it was before it had a code."""

    code = "already-finished"


class InternalError(PeerlbError):
    """peerlb caught a panic of its Rust code (a bug in peerlb: please report it with the
    message). The call did nothing, or only part of it; the list stays usable."""

    code = "internal"


class Overloaded(PeerlbError):
    """A circuit breaker refused ``choose()`` at once: the list has ``max_pending``
    requests in flight, or every peer it tried has ``max_pending_per_peer``."""

    code = "overloaded"


# Every subclass defined above, by code (how the native module finds the class of a code).
_BY_CODE: Dict[str, Type[PeerlbError]] = {
    cls.code: cls for cls in PeerlbError.__subclasses__() if cls.__module__ == __name__
}
# Shown as ``peerlb.NotStarted`` (where users import them from) in tracebacks and reprs.
PeerlbError.__module__ = "peerlb"
for _cls in _BY_CODE.values():
    _cls.__module__ = "peerlb"
del _cls
