"""Type stubs of the native module ``peerlb._peerlb`` (re-exported by ``peerlb``)."""

import asyncio
import datetime
import os
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Coroutine,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    final,
)

from typing_extensions import Self

from peerlb import AdminResult, ListInfo, PeerInfo, Transport

_Seconds = Union[float, int, datetime.timedelta]
_Outcome = Literal["ok", "failure", "declined", "cancelled"]
_AttemptError = Literal["connect-failed", "reset", "timed-out", "failed"]
_Status = Literal["available", "connecting", "unavailable"]
_PeerSpec = Union[str, Tuple[str, int], Mapping[str, Union[str, int, None]]]
_EventKind = Literal[
    "added", "removed", "available", "unavailable", "ejected", "restored", "disabled", "enabled"
]
_SessionEventKind = Literal["created", "terminated", "failover-requested"]
_T = TypeVar("_T")
_StrategyName = Literal[
    "round-robin",
    "random",
    "fewest-pending",
    "two-random-choices",
    "hash-ring",
    "maglev",
    "weighted-round-robin",
    "peak-ewma",
    "prequal",
]
"""The 9 strategies by name; a spec string with a mode and options is a plain ``str``
(``"hash-ring:fast?bounded=1.25"``, ``"weighted-round-robin:orca"``)."""


__all__ = [
    "PeerList",
    "Choice",
    "LoadReport",
    "Subscriber",
    "PeerEvent",
    "Session",
    "SessionEvent",
    "Subscription",
    "ManualClock",
    "RetryBudget",
    "_RetryCall",
    "RequestRule",
    "_RequestCall",
    "Upstream",
    "_CancelWait",
    "_complete",
    "_panic",
    "__version__",
    "ERROR_CODES",
    "STRATEGIES",
    "StaticUpdater",
    "FileUpdater",
    "DnsUpdater",
    "EtcdUpdater",
    "XdsUpdater",
    "Binding",
    "AdminServer",
    "serve_admin",
    "metrics",
    "deterministic_subset",
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
class LoadReport:
    """What a backend reported about its load with one response; each field optional.

    ``weighted-round-robin:orca`` uses ``utilization``, ``qps`` and ``eps`` (weights as
    gRPC computes them), ``prequal`` uses ``requests_in_flight``; other strategies ignore
    reports. A negative, NaN or infinite number, or a fractional in-flight count, is
    ``InvalidArgument``.
    """

    def __new__(
        cls,
        requests_in_flight: Optional[Union[int, float]] = None,
        utilization: Optional[float] = None,
        qps: Optional[float] = None,
        eps: Optional[float] = None,
    ) -> Self: ...
    @classmethod
    def from_orca(cls, text: str) -> LoadReport:
        """Parses an ``endpoint-load-metrics`` header value in ORCA's text form,
        ``"TEXT cpu_utilization=0.3, rps_fractional=120, eps=1.5, named_metrics.rif=7"``."""
    @property
    def requests_in_flight(self) -> Optional[int]: ...
    @property
    def utilization(self) -> Optional[float]: ...
    @property
    def qps(self) -> Optional[float]: ...
    @property
    def eps(self) -> Optional[float]: ...
    def __eq__(self, value: object, /) -> bool: ...

_Load = Union[LoadReport, str, Mapping[str, Union[int, float]]]

@final
class Choice:
    """A chosen peer; the request stays pending until finished."""

    @property
    def peer(self) -> str: ...
    @property
    def finished(self) -> bool: ...
    def finish(
        self,
        outcome: _Outcome = "ok",
        latency: Optional[_Seconds] = None,
        load: Optional[_Load] = None,
    ) -> None:
        """Ends the request (with the backend's load report, if given: a ``LoadReport``,
        ORCA text or a mapping of its fields); ``AlreadyFinished`` if it was already
        finished."""
    def cancel(self) -> None:
        """Abandons the request (finished as ``"cancelled"``); no-op once finished."""
    def release(self) -> None:
        """The same as ``cancel()``."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        _exc: Optional[BaseException] = None,
        _tb: Optional[TracebackType] = None,
    ) -> Literal[False]: ...

@final
class PeerEvent:
    """One peer event: ``kind``, ``peer``, ``detail``; ``str(event)`` is ``"<kind> <peer>"``."""

    @property
    def kind(self) -> _EventKind: ...
    @property
    def peer(self) -> str: ...
    @property
    def detail(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class SessionEvent:
    """One session event: ``kind``, ``session`` (its id), ``peer``, ``reason``;
    ``str(event)`` is ``"<kind> <session> <peer>"``."""

    @property
    def kind(self) -> _SessionEventKind: ...
    @property
    def session(self) -> int: ...
    @property
    def peer(self) -> str: ...
    @property
    def reason(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Session:
    """A long-lived connection bound to one peer (``PeerList.open_session``); one pending
    request on it while bound. A context manager: the block closes it; so does dropping it."""

    @property
    def id(self) -> int: ...
    @property
    def peer(self) -> str: ...
    @property
    def failover_requested(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def bound(self) -> bool: ...
    @property
    def failovers(self) -> int: ...
    def ok(self) -> None: ...
    def failover(
        self,
        reason: Optional[str] = None,
        timeout: Optional[_Seconds] = None,
        *,
        remote_code: Optional[int] = None,
        shard_key: Union[str, bytes, None] = None,
    ) -> str:
        """Moves the session to another peer and returns it; ``NoPeerAvailable`` (no
        timeout) or ``ChooseTimeout`` when there is none, with ``.peer`` and
        ``.remote_code``."""
    def failover_async(
        self,
        reason: Optional[str] = None,
        timeout: Optional[_Seconds] = None,
        *,
        remote_code: Optional[int] = None,
        shard_key: Union[str, bytes, None] = None,
    ) -> asyncio.Future[str]: ...
    def decline(self, reason: Optional[str] = None, *, remote_code: Optional[int] = None) -> BaseException:
        """Ends the session (the peer refused on purpose); returns the ``Declined`` error."""
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        _exc_type: Optional[Type[BaseException]] = None,
        _exc: Optional[BaseException] = None,
        _tb: Optional[TracebackType] = None,
    ) -> Literal[False]: ...

@final
class Subscription:
    """A list's event subscription; lasts as long as the list unless cancelled."""

    def cancel(self) -> bool: ...
    def unsubscribe(self) -> bool:
        """The same as ``cancel()``."""
    @property
    def active(self) -> bool: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        _exc_type: Optional[Type[BaseException]] = None,
        _exc: Optional[BaseException] = None,
        _tb: Optional[TracebackType] = None,
    ) -> bool: ...

@final
class ManualClock:
    """A test clock that stands still until ``advance(seconds)`` moves it."""

    def __new__(cls) -> Self: ...
    def advance(self, seconds: _Seconds) -> None: ...
    @property
    def elapsed(self) -> float: ...

@final
class RetryBudget:
    """Retries allowed per sliding window of ``ttl`` seconds: ``min_per_sec * ttl + ratio *
    calls``; shared by the ``retry`` calls given it."""

    def __new__(
        cls,
        ratio: Optional[float] = None,
        min_per_sec: Optional[int] = None,
        ttl: Optional[_Seconds] = None,
        clock: Optional[ManualClock] = None,
    ) -> Self:
        """``None`` (or left out) takes core's default: 0.2, 10 per second, 10 s."""
    @property
    def balance(self) -> int: ...

@final
class _RetryCall:
    def choose(self) -> Choice: ...
    def choose_async(self) -> asyncio.Future[Choice]: ...
    def succeeded(self, choice: Choice) -> None: ...
    def failed(self, choice: Choice, exc: BaseException) -> None: ...
    def declined(self, choice: Choice, exc: BaseException) -> BaseException: ...
    @property
    def attempts(self) -> int: ...

@final
class RequestRule:
    """How the HTTP integrations (``peerlb.httpx``, ``peerlb.requests``) judge a request:
    connect errors, resets, timeouts and ``failure_statuses`` are failures of the peer,
    other statuses ok; a failure is retried on another peer for idempotent methods (or
    every method with ``retry_any_method``, or a request that never connected), a body in
    memory, attempts left, the overall ``timeout`` not passed and the budget agreeing."""

    def __new__(
        cls,
        *,
        failure_statuses: Union[str, Iterable[int], None] = None,
        max_attempts: Optional[int] = None,
        timeout: Optional[_Seconds] = None,
        budget: Union[RetryBudget, bool, None] = None,
        retry_any_method: Optional[bool] = None,
    ) -> Self:
        """``None`` (or left out) takes core's default: every 5xx (``"500-599"``), 3
        attempts, no overall timeout, a budget of the rule's own (``False``: none), only
        idempotent methods retried."""
    @property
    def spec(self) -> str:
        """The options given as core's spec string (``""`` for the defaults)."""
    @property
    def max_attempts(self) -> int: ...
    @property
    def failure_statuses(self) -> str: ...
    @property
    def retry_any_method(self) -> bool: ...

@final
class _RequestCall:
    def __new__(
        cls,
        rule: RequestRule,
        lst: PeerList,
        method: str,
        body_replayable: bool,
        idempotent: Optional[bool] = None,
    ) -> Self: ...
    def choose(self) -> Tuple[str, str, int]: ...
    def choose_async(self) -> asyncio.Future[Tuple[str, str, int]]: ...
    def report(
        self,
        status: Optional[int] = None,
        error: Optional[_AttemptError] = None,
        outcome: Optional[str] = None,
    ) -> bool: ...
    @property
    def remaining(self) -> Optional[float]: ...
    @property
    def attempts(self) -> int: ...
    @property
    def stopped(self) -> Optional[str]: ...

@final
class PeerList:
    """A list of peers with a strategy to choose among the available ones."""

    def __new__(
        cls,
        strategy: Union[_StrategyName, str, None] = None,
        *,
        shuffle: Optional[bool] = None,
        seed: Optional[int] = None,
        fail_fast: Optional[bool] = None,
        transport: Union[Transport, str, None] = None,
        ejection: Union[bool, Mapping[str, int], None] = None,
        clock: Optional[ManualClock] = None,
        name: Optional[str] = None,
        max_pending: Optional[int] = None,
        max_pending_per_peer: Optional[int] = None,
        metrics: Optional[bool] = None,
        peer_labels: Optional[bool] = None,
        capacity: Optional[int] = None,
        local_zone: Optional[str] = None,
        min_cluster_size: Optional[int] = None,
        overprovisioning_factor: Optional[float] = None,
        subset: Optional[int] = None,
        subset_client: Optional[int] = None,
    ) -> Self:
        """``None`` (or left out) takes core's default: ``"round-robin"``, shuffled,
        random seed, waiting (not fail-fast), always-available, ejection on, real clock,
        named ``list-N``, no circuit breakers, metrics on with peer labels, capacity 10
        (yarpc's), no local zone, min cluster size 6, overprovisioning 1.4.

        Peers added as ``{"id": ..., "zone": ..., "priority": ...}`` are routed by
        Envoy's priority load (a level with healthy share x overprovisioning >= 100 %
        takes every request; the rest spills to the next levels) and, with
        ``local_zone``, by zone inside each level (Envoy's zone-aware routing, off below
        ``min_cluster_size`` healthy peers). ``introspect()["priorities"]`` gives each
        level's load.

        ``subset=size`` with ``subset_client=id`` (Google SRE's deterministic
        subsetting): the list retains only ``deterministic_subset(offered, id, size)``
        of the peers ``update`` offers it; updates still name the whole offered set
        (their errors are about it) and ``introspect()["subset"]`` shows ``size``,
        ``client`` and ``offered``. ``0`` (or left out) is off; one without the other
        raises ``InvalidArgument``."""
    @property
    def name(self) -> str:
        """The list's name: its ``list`` label in metrics and its admin endpoint path."""
    def metrics(self) -> str:
        """The list's metrics in the Prometheus text format (empty with ``metrics=False``)."""
    @property
    def strategy(self) -> str:
        """The full strategy spec, options included (``"hash-ring?bounded=1.25"``)."""
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
    def introspect(self) -> ListInfo: ...
    def list_backends(self) -> List[PeerInfo]: ...
    def disable(self, peer: str) -> AdminResult: ...
    def enable(self, peer: str) -> AdminResult: ...
    def reset(self, peer: str) -> AdminResult: ...
    def delete(self, peer: str) -> AdminResult: ...
    def failover(self, peer: str) -> AdminResult: ...
    def add_backend(self, data: Union[str, bytes, Mapping[str, object]]) -> str: ...
    def backend_config(self, peer: str) -> str: ...
    def available(self, peer: str) -> bool: ...
    def uninitialized(self, peer: str) -> bool: ...
    def num_available(self) -> int: ...
    def num_unavailable(self) -> int: ...
    def num_uninitialized(self) -> int: ...
    def peers(self) -> List[str]: ...
    @property
    def capacity(self) -> int: ...
    def open_session(
        self, timeout: Optional[_Seconds] = None, shard_key: Union[str, bytes, None] = None
    ) -> Session: ...
    def open_session_async(
        self, timeout: Optional[_Seconds] = None, shard_key: Union[str, bytes, None] = None
    ) -> asyncio.Future[Session]: ...
    def subscribe_sessions(self, callback: Callable[[SessionEvent], object]) -> Subscription: ...
    def subscribe(self, callback: Callable[[PeerEvent], object]) -> Subscription: ...
    def retry(
        self,
        fn: Callable[[str], _T],
        /,
        *,
        max_attempts: Optional[int] = None,
        timeout: Optional[_Seconds] = None,
        budget: Optional[RetryBudget] = None,
        shard_key: Union[str, bytes, None] = None,
    ) -> _T: ...
    def retry_async(
        self,
        fn: Callable[[str], Awaitable[_T]],
        /,
        *,
        max_attempts: Optional[int] = None,
        timeout: Optional[_Seconds] = None,
        budget: Optional[RetryBudget] = None,
        shard_key: Union[str, bytes, None] = None,
    ) -> Coroutine[Any, Any, _T]: ...
    def _check_retry(
        self,
        *,
        max_attempts: Optional[int] = None,
        timeout: Optional[_Seconds] = None,
        budget: Optional[RetryBudget] = None,
        shard_key: Union[str, bytes, None] = None,
    ) -> None: ...
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
        check: Union[Literal["tcp-probe"], Callable[[str], object], None] = None,
        interval: Optional[_Seconds] = None,
        timeout: Optional[_Seconds] = None,
        initial_score: Optional[float] = None,
        low_score: Optional[float] = None,
        high_score: Optional[float] = None,
        fail_delta: Optional[float] = None,
        success_delta: Optional[float] = None,
        manual: bool = False,
    ) -> Self:
        """``None`` (or left out) takes core's default (go-loadbalancer's): the TCP probe,
        every 1 s with a 100 ms timeout, scores +1 in [-3, +3], deltas -1/+1."""
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
class Binding:
    """An updater bound to a list (``updater.bind(list)``): ``start()``/``stop()`` or a
    context manager. A failing source keeps the last good set (see ``last_error``)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def running(self) -> bool: ...
    @property
    def source(self) -> str: ...
    def peers(self) -> List[Tuple[str, int]]: ...
    @property
    def last_error(self) -> Optional[BaseException]: ...
    def stats(self) -> Dict[str, int]: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        _exc: Optional[BaseException] = None,
        _tb: Optional[TracebackType] = None,
    ) -> bool: ...

@final
class StaticUpdater:
    """A fixed set of peers (with weights), applied when the binding starts."""

    def __new__(cls, peers: Iterable[_PeerSpec]) -> Self: ...
    def bind(self, list: PeerList) -> Binding: ...

@final
class FileUpdater:
    """One ``host:port [weight] [zone=Z] [priority=P]`` per line (``#`` comments), polled
    for changes."""

    def __new__(
        cls,
        path: Union[str, "os.PathLike[str]"],
        *,
        poll_interval: Optional[_Seconds] = None,
        max_size: Optional[int] = None,
    ) -> Self: ...
    def bind(self, list: PeerList) -> Binding: ...

@final
class DnsUpdater:
    """A/AAAA records + ``port`` (``record="a"|"aaaa"|"ip"``) or SRV records, polled."""

    def __new__(
        cls,
        name: str,
        record: Optional[Literal["srv", "a", "aaaa", "ip"]] = None,
        *,
        port: Optional[int] = None,
        nameserver: Optional[str] = None,
        min_interval: Optional[_Seconds] = None,
        max_interval: Optional[_Seconds] = None,
        timeout: Optional[_Seconds] = None,
        empty_threshold: Optional[int] = None,
    ) -> Self:
        """``None`` (or left out) takes core's default: SRV records, the system resolver,
        polls at the TTL within [1 s, 60 s], an empty answer applied after 3 in a row."""
    def bind(self, list: PeerList) -> Binding: ...

@final
class EtcdUpdater:
    """Watches a key prefix in etcd (values: ``{"addr": ..., "weight": n}``, ``host:port``,
    or empty = the key suffix). Raises ``InvalidArgument`` in a build without etcd."""

    def __new__(
        cls,
        endpoints: Iterable[str],
        prefix: str,
        *,
        timeout: Optional[_Seconds] = None,
        retry_interval: Optional[_Seconds] = None,
    ) -> Self: ...
    def bind(self, list: PeerList) -> Binding: ...

@final
class XdsUpdater:
    """Follows the endpoints of ``clusters`` on an xDS control plane (ADS v3, state of the
    world, EDS) at ``server`` (``"http://host:port"`` or ``"host:port"``, no TLS).
    Locality ``region/zone/sub_zone`` becomes the zone, its priority the priority, the
    endpoint's (else the locality's, else 1) weight the weight; HEALTHY and UNKNOWN
    endpoints are offered, DEGRADED ones only when none is healthy. Invalid responses are
    NACKed and the last good set stays, as while the server is away. ``None`` (or left
    out) takes the core's defaults: node id and cluster ``"peerlb"``, timeout 2 s, backoff
    0.5 s doubling to 30 s. Raises ``InvalidArgument`` in a build without xDS."""

    def __new__(
        cls,
        server: str,
        clusters: Iterable[str],
        *,
        node_id: Optional[str] = None,
        node_cluster: Optional[str] = None,
        timeout: Optional[_Seconds] = None,
        backoff_initial: Optional[_Seconds] = None,
        backoff_max: Optional[_Seconds] = None,
    ) -> Self: ...
    def bind(self, list: PeerList) -> Binding: ...

@final
class AdminServer:
    """A running admin endpoint (from ``serve_admin``); a context manager that stops it."""

    @property
    def url(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def address(self) -> str: ...
    def stop(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        _exc_type: Optional[Type[BaseException]] = None,
        _exc: Optional[BaseException] = None,
        _tb: Optional[TracebackType] = None,
    ) -> bool: ...

def serve_admin(address: Optional[str] = None, *, token: Optional[str] = None) -> AdminServer:
    """Serves the admin endpoint (``/metrics``, ``/lists``, ``/lists/{name}/backends...``),
    on ``127.0.0.1:9901`` by default; ``":0"`` picks a free port."""

def metrics() -> str:
    """Every live list's metrics in the Prometheus text format."""

@final
class _CancelWait:
    def __call__(self, future: asyncio.Future[Any]) -> None: ...

def _complete(future: asyncio.Future[Any], value: object, is_error: bool) -> None: ...
def _panic(message: str) -> None: ...

def deterministic_subset(backends: Iterable[str], client: int, size: int) -> List[str]:
    """Which ``size`` of ``backends`` client ``client`` connects to (Google SRE's
    deterministic subsetting; one backend more or less moves at most one in and one out
    per client). Every backend when ``size`` is 0 or at least their number."""
