"""The Python half of ``PeerList.retry`` / ``retry_async`` and the ``retrying`` decorator.

Core's ``Retry`` makes every decision (another attempt or not, which peer, the budget, the
final error and its message); ``_RetryCall`` steps it. This module only translates what
the user's function did into a step:

* it returned: the attempt succeeded, and its value is the call's value;
* it raised ``peerlb.Declined``: the peer refused on purpose; the call stops at once with a
  ``Declined`` error (neither retried nor counted toward the peer's ejection);
* it raised any other ``Exception``: the attempt failed (``str(exc)`` is its error, or the
  exception's type name when that is empty); core retries on another peer or gives the
  final error (``RetryExhausted``, or ``ChooseTimeout`` when the ``timeout`` passed), whose
  ``__cause__`` is the last attempt's exception;
* it raised a ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``,
  ``asyncio.CancelledError``): the attempt is abandoned (``cancelled``) and the exception
  propagates at once.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar, Union, cast

from ._errors import Declined

if TYPE_CHECKING:
    import datetime

    from typing_extensions import Concatenate, ParamSpec

    from ._peerlb import PeerList, RetryBudget, _RetryCall

    _P = ParamSpec("_P")

T = TypeVar("T")

__all__ = ["retrying"]


def drive(call: _RetryCall, fn: Callable[[str], T]) -> T:
    """Runs ``fn`` under ``call`` (``PeerList.retry``)."""
    while True:
        choice = call.choose()
        try:
            result = fn(choice.peer)
        except Declined as e:
            raise call.declined(choice, e) from e
        except Exception as e:  # noqa: BLE001 - every failure is an attempt's error
            call.failed(choice, e)
            continue
        except BaseException:
            choice.release()
            raise
        if inspect.isawaitable(result):
            choice.release()
            close = getattr(result, "close", None)
            if close is not None:
                close()  # no "coroutine was never awaited" warning
            raise TypeError(
                f"retry() called {fn!r}, which returned an awaitable: "
                "use `await lst.retry_async(fn)` for async functions"
            )
        call.succeeded(choice)
        return result


async def drive_async(call: _RetryCall, fn: Callable[[str], Awaitable[T]]) -> T:
    """Runs ``fn`` under ``call`` (``PeerList.retry_async``)."""
    while True:
        choice = await call.choose_async()
        try:
            awaitable = fn(choice.peer)
        except BaseException:
            choice.release()
            raise
        if not inspect.isawaitable(awaitable):
            choice.release()
            raise TypeError(
                f"retry_async() needs a function returning an awaitable; {fn!r} returned "
                f"{type(awaitable).__name__} (use lst.retry(fn) for plain functions)"
            )
        try:
            result = await awaitable
        except Declined as e:
            raise call.declined(choice, e) from e
        except Exception as e:  # noqa: BLE001 - every failure is an attempt's error
            call.failed(choice, e)
            continue
        except BaseException:
            choice.release()
            raise
        call.succeeded(choice)
        return result


def retrying(
    lst: PeerList,
    *,
    max_attempts: Optional[int] = None,
    timeout: Union[float, int, datetime.timedelta, None] = None,
    budget: Optional[RetryBudget] = None,
    shard_key: Union[str, bytes, None] = None,
) -> Callable[[Callable[Concatenate[str, _P], T]], Callable[_P, T]]:
    """A decorator: each call of the decorated ``fn(peer, *args, **kwargs)`` runs as
    ``lst.retry(lambda peer: fn(peer, *args, **kwargs), ...)`` — or, for an ``async def``,
    ``await lst.retry_async(...)``. The wrapper takes the arguments after ``peer``::

        @peerlb.retrying(lst, max_attempts=3, timeout=2.0)
        def fetch(peer: str, path: str) -> bytes: ...

        fetch("/status")            # tries up to three peers

    Bad options raise here, as ``lst.retry`` would (``TypeError`` / ``InvalidArgument``).
    """
    if not hasattr(lst, "_check_retry"):
        raise TypeError(f"retrying() needs a peerlb.PeerList, not {type(lst).__name__}")
    options: Any = {
        "max_attempts": max_attempts,
        "timeout": timeout,
        "budget": budget,
        "shard_key": shard_key,
    }
    lst._check_retry(**options)  # bad options fail here, not at the first call

    def decorate(fn: Callable[Concatenate[str, _P], T]) -> Callable[_P, T]:
        if not callable(fn):
            raise TypeError(f"retrying(...) decorates a callable, not {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn):
            afn: Any = fn

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                return await lst.retry_async(
                    lambda peer: afn(peer, *args, **kwargs), **options
                )

            wrapper: Any = run_async
        else:

            @functools.wraps(fn)
            def run(*args: Any, **kwargs: Any) -> Any:
                return lst.retry(lambda peer: fn(peer, *args, **kwargs), **options)

            wrapper = run
        return cast("Callable[_P, T]", wrapper)

    return decorate
