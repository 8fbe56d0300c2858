"""Type stubs of the native module ``peerlb._peerlb`` (re-exported by ``peerlb``)."""

import asyncio
import datetime
from types import TracebackType
from typing import Any, Callable, Dict, Iterable, List, Literal, Mapping, Optional, Tuple, Type, Union, final

from typing_extensions import Self

from peerlb import Transport

_Seconds = Union[float, int, datetime.timedelta]
_Outcome = Literal["ok", "failure", "declined", "cancelled"]
_Status = Literal["available", "connecting", "unavailable"]
_PeerSpec = Union[str, Tuple[str, int], Mapping[str, Union[str, int]]]

__all__ = [
    "PeerList",
    "Choice",
    "Subscriber",
    "Upstream",
    "_CancelWait",
    "_complete",
    "__version__",
    "ERROR_CODES",
    "STRATEGIES",
]

__version__: str
ERROR_CODES: List[Tuple[str, int]]
STRATEGIES: List[str]

@final
class Subscriber:
    """The handle through which a transport reports one peer's status to one list."""

    @property
    def peer_id(self) -> str: ...
    def set_status(self, status: _Status) -> bool: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Choice:
    """A chosen peer; the request stays pending until finished."""

    @property
    def peer(self) -> str: ...
    @property
    def finished(self) -> bool: ...
    def finish(self, outcome: _Outcome = "ok", latency: Optional[_Seconds] = None) -> None: ...
    def release(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        _exc: Optional[BaseException] = None,
        _tb: Optional[TracebackType] = None,
    ) -> Literal[False]: ...

@final
class PeerList:
    """A list of peers with a strategy to choose among the available ones."""

    def __new__(
        cls,
        strategy: str = "round-robin",
        *,
        shuffle: bool = True,
        seed: Optional[int] = None,
        fail_fast: bool = False,
        transport: Union[Transport, str, None] = None,
    ) -> Self: ...
    @property
    def strategy(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def update(
        self, add: Optional[Iterable[_PeerSpec]] = (), remove: Optional[Iterable[str]] = ()
    ) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def choose(
        self, timeout: Optional[_Seconds] = None, shard_key: Union[str, bytes, None] = None
    ) -> Choice: ...
    def choose_async(
        self, timeout: Optional[_Seconds] = None, shard_key: Union[str, bytes, None] = None
    ) -> asyncio.Future[Choice]: ...
    def introspect(self) -> Dict[str, Any]: ...
    def _noop(self) -> None: ...
    def __len__(self) -> int: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        _exc: Optional[BaseException] = None,
        _tb: Optional[TracebackType] = None,
    ) -> Literal[False]: ...

@final
class Upstream:
    """A list of backends, each with a score that health checks and ``up``/``down`` move;
    ``pick()`` round-robins over the backends with a score >= 0.

    ``check`` is ``"tcp-probe"`` (default: the backend ``host:port`` accepts a TCP
    connection) or a callable taking the backend; it runs on a library thread (with the
    GIL), and raising, returning ``False`` or running past ``timeout`` is a failed check.
    """

    def __new__(
        cls,
        backends: Optional[Iterable[str]] = (),
        *,
        check: Union[Literal["tcp-probe"], Callable[[str], object], None] = "tcp-probe",
        interval: Optional[_Seconds] = 1.0,
        timeout: Optional[_Seconds] = 0.1,
        initial_score: Optional[float] = 1.0,
        low_score: Optional[float] = -3.0,
        high_score: Optional[float] = 3.0,
        fail_delta: Optional[float] = -1.0,
        success_delta: Optional[float] = 1.0,
        manual: bool = False,
    ) -> Self: ...
    def pick(self) -> str: ...
    def up(self, backend: str) -> None: ...
    def down(self, backend: str) -> None: ...
    def reconcile(self, backends: Iterable[str]) -> None: ...
    def score(self, backend: str) -> Optional[float]: ...
    def scores(self) -> Dict[str, float]: ...
    @property
    def backends(self) -> List[str]: ...
    def check_now(self) -> None: ...
    def shutdown(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_args: object) -> bool: ...

@final
class _CancelWait:
    def __call__(self, future: asyncio.Future[Any]) -> None: ...

def _complete(future: asyncio.Future[Any], value: object, is_error: bool) -> None: ...
