"""peerlb inside httpx: every request of a client goes to the peer the list chooses.

::

    import httpx, peerlb, peerlb.httpx

    lst = peerlb.PeerList("fewest-pending")
    lst.update(add=["10.0.0.1:8080", "10.0.0.2:8080"])
    lst.start()
    with httpx.Client(transport=peerlb.httpx.Transport(lst)) as client:
        client.get("http://orders.internal/v1/orders")   # sent to 10.0.0.x:8080

    async with httpx.AsyncClient(transport=peerlb.httpx.AsyncTransport(lst)) as client:
        await client.get("http://orders.internal/v1/orders")

Each request is sent to the chosen ``host:port`` with the URL's own ``Host`` header (and,
for ``https``, the URL's host as TLS server name and certificate name), and judged by the
core's request rule (``peerlb.RequestRule``): connect errors, resets, timeouts and 5xx
count against the peer (toward ejection), the latency to the response's head feeds
latency-aware strategies, and a failed idempotent request (``GET``, ``HEAD``,
``OPTIONS``, ``TRACE``, ``PUT``, ``DELETE``, or one sent with
``extensions={"peerlb.idempotent": True}``) whose body is in memory is sent again to
another peer while the rule allows (attempts, timeout, retry budget). A request that
never connected goes to another peer whatever its method. When no retry follows, the
caller gets the last response (a 503 stays a 503) or the last exception, as without
peerlb. When no peer can be chosen the transport raises ``httpx.ConnectError`` whose
``__cause__`` is the ``peerlb`` error.

``classify(request, response, exception)`` (optional) may override the rule's outcome:
return ``"ok"``, ``"failure"``, ``"declined"``, ``"cancelled"``, or ``None`` to keep it.

Mount a transport per service: ``httpx.Client(mounts={"http://orders.internal":
peerlb.httpx.Transport(orders)})``. The client's timeouts apply to each attempt; a rule
``timeout`` bounds the whole request (each attempt's timeouts are capped by what is left).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import httpx

from ._errors import PeerlbError
from ._http import next_peer, next_peer_async
from ._peerlb import PeerList, RequestRule, _RequestCall

__all__ = ["Transport", "AsyncTransport", "Classifier"]

if TYPE_CHECKING:
    from ._peerlb import _AttemptError, _Outcome

Classifier = Callable[[httpx.Request, Optional[httpx.Response], Optional[BaseException]], Optional[str]]
"""``classify(request, response, exception)``: ``response`` is set when the peer answered
(its body not read yet), ``exception`` when it did not. Returns an outcome (``"ok"``,
``"failure"``, ``"declined"``, ``"cancelled"``; anything else is ``InvalidArgument``) or
``None``."""

#: The request extension that marks a request as safe (``True``) or unsafe (``False``) to
#: send twice, overriding its method.
IDEMPOTENT = "peerlb.idempotent"


def _error_kind(exc: httpx.TransportError) -> "tuple[_AttemptError, Optional[_Outcome]]":
    """The rule's name for a transport error, and an outcome when the peer is not to
    blame (a full local pool, a request httpx could not send)."""
    if isinstance(exc, httpx.PoolTimeout):
        return "connect-failed", "cancelled"
    if isinstance(exc, (httpx.LocalProtocolError, httpx.UnsupportedProtocol)):
        return "failed", "cancelled"
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return "connect-failed", None
    if isinstance(exc, httpx.TimeoutException):
        return "timed-out", None
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError)):
        return "reset", None
    return "failed", None


def _replayable(request: httpx.Request) -> bool:
    """Whether the body can be sent again: in memory (or none), not a one-shot stream."""
    return isinstance(request.stream, httpx.ByteStream) or hasattr(request, "_content")


def _peer_url_public(url: httpx.URL, host: str, port: int) -> httpx.URL:
    return url.copy_with(host=host, port=port)


def _peer_url_fast(url: httpx.URL, host: str, port: int) -> httpx.URL:
    # httpx.URL.copy_with re-parses and re-validates the whole URL (tens of microseconds);
    # the parsed form is a named tuple whose host and port can be replaced directly.
    new = httpx.URL.__new__(httpx.URL)
    new._uri_reference = url._uri_reference._replace(  # type: ignore[attr-defined]
        host=f"[{host}]" if ":" in host else host, port=port
    )
    return new


def _pick_peer_url() -> Callable[[httpx.URL, str, int], httpx.URL]:
    """The fast form when this httpx has the internals it relies on and it gives exactly
    what ``copy_with`` gives; else ``copy_with``."""
    try:
        sample = httpx.URL("https://svc.example:8443/a/b?x=1#f")
        for host in ("10.0.0.1", "::1", "peer.internal"):
            if str(_peer_url_fast(sample, host, 8080)) != str(_peer_url_public(sample, host, 8080)):
                return _peer_url_public
        return _peer_url_fast
    except Exception:  # noqa: BLE001 - any difference in httpx's internals
        return _peer_url_public


_peer_url = _pick_peer_url()


def _attempt_extensions(
    request: httpx.Request, url: httpx.URL, call: _RequestCall
) -> "dict[str, Any]":
    """The request's extensions for one attempt: the URL's host as TLS server name, and
    each timeout capped by what is left of the rule's timeout."""
    extensions = dict(request.extensions)
    if url.scheme == "https":
        extensions.setdefault("sni_hostname", url.host)
    remaining = call.remaining
    if remaining is not None:
        timeouts = dict(extensions.get("timeout") or {})
        for key in ("connect", "read", "write", "pool"):
            t = timeouts.get(key)
            timeouts[key] = remaining if t is None else min(t, remaining)
        extensions["timeout"] = timeouts
    return extensions


def _discard(response: httpx.Response) -> None:
    """Reads and closes a response no one will see (its connection goes back to the pool
    when the body was read to the end)."""
    try:
        response.read()
    except httpx.HTTPError:
        pass
    finally:
        response.close()


async def _discard_async(response: httpx.Response) -> None:
    try:
        await response.aread()
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()


class _Balancer:
    """What the sync and async transports share: the list, the rule and the classifier."""

    def __init__(
        self, lst: PeerList, rule: Optional[RequestRule], classify: Optional[Classifier]
    ) -> None:
        if not isinstance(lst, PeerList):
            raise TypeError(f"the list must be a peerlb.PeerList, not {type(lst).__name__}")
        if rule is not None and not isinstance(rule, RequestRule):
            raise TypeError(f"rule must be a peerlb.RequestRule or None, not {type(rule).__name__}")
        if classify is not None and not callable(classify):
            raise TypeError(f"classify must be callable or None, not {type(classify).__name__}")
        self._list = lst
        self._rule = rule if rule is not None else RequestRule()
        self._classify = classify

    def _call(self, request: httpx.Request) -> _RequestCall:
        idempotent = request.extensions.get(IDEMPOTENT)
        if idempotent is not None and not isinstance(idempotent, bool):
            raise TypeError(f"the {IDEMPOTENT!r} extension must be a bool, not {type(idempotent).__name__}")
        return _RequestCall(self._rule, self._list, request.method, _replayable(request), idempotent)

    def _outcome(
        self,
        request: httpx.Request,
        response: Optional[httpx.Response],
        exc: Optional[BaseException],
        default: Optional[_Outcome],
    ) -> Optional[str]:
        if self._classify is None:
            return default
        outcome = self._classify(request, response, exc)
        return default if outcome is None else outcome

    @staticmethod
    def _no_peer(request: httpx.Request, error: PeerlbError) -> httpx.ConnectError:
        return httpx.ConnectError(f"peerlb: no peer for {request.method} {request.url}: {error}", request=request)


class Transport(httpx.BaseTransport, _Balancer):
    """An ``httpx`` transport that balances every request over ``lst`` (see the module
    docs). ``inner`` is the transport that sends each attempt (default: an
    ``httpx.HTTPTransport(**transport_options)``, which keeps a connection pool per peer);
    ``rule`` a ``peerlb.RequestRule`` (default: the core's defaults, with a retry budget of
    this transport's own)."""

    def __init__(
        self,
        lst: PeerList,
        *,
        rule: Optional[RequestRule] = None,
        classify: Optional[Classifier] = None,
        inner: Optional[httpx.BaseTransport] = None,
        **transport_options: Any,
    ) -> None:
        _Balancer.__init__(self, lst, rule, classify)
        if inner is not None and transport_options:
            raise TypeError("give either inner or options for the inner httpx.HTTPTransport, not both")
        self._inner = inner if inner is not None else httpx.HTTPTransport(**transport_options)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call = self._call(request)
        try:
            peer, host, port = call.choose()
        except PeerlbError as e:
            raise self._no_peer(request, e) from e
        url, extensions = request.url, request.extensions
        try:
            while True:
                request.url = _peer_url(url, host, port)
                request.extensions = _attempt_extensions(request, url, call)
                try:
                    response = self._inner.handle_request(request)
                except httpx.TransportError as exc:
                    request.url, request.extensions = url, extensions
                    kind, default = _error_kind(exc)
                    nxt = None
                    if call.report(error=kind, outcome=self._outcome(request, None, exc, default)):
                        nxt = next_peer(call)
                    if nxt is None:
                        raise
                    peer, host, port = nxt
                    continue
                request.url, request.extensions = url, extensions
                outcome = self._outcome(request, response, None, None)
                if not call.report(status=response.status_code, outcome=outcome):
                    return response
                nxt = next_peer(call)
                if nxt is None:
                    return response
                peer, host, port = nxt
                _discard(response)
        finally:
            request.url, request.extensions = url, extensions

    def close(self) -> None:
        self._inner.close()


class AsyncTransport(httpx.AsyncBaseTransport, _Balancer):
    """``Transport`` for ``httpx.AsyncClient``: waits for a peer without blocking the event
    loop; ``inner`` defaults to an ``httpx.AsyncHTTPTransport(**transport_options)``."""

    def __init__(
        self,
        lst: PeerList,
        *,
        rule: Optional[RequestRule] = None,
        classify: Optional[Classifier] = None,
        inner: Optional[httpx.AsyncBaseTransport] = None,
        **transport_options: Any,
    ) -> None:
        _Balancer.__init__(self, lst, rule, classify)
        if inner is not None and transport_options:
            raise TypeError("give either inner or options for the inner httpx.AsyncHTTPTransport, not both")
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport(**transport_options)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = self._call(request)
        try:
            peer, host, port = await call.choose_async()
        except PeerlbError as e:
            raise self._no_peer(request, e) from e
        url, extensions = request.url, request.extensions
        try:
            while True:
                request.url = _peer_url(url, host, port)
                request.extensions = _attempt_extensions(request, url, call)
                try:
                    response = await self._inner.handle_async_request(request)
                except httpx.TransportError as exc:
                    request.url, request.extensions = url, extensions
                    kind, default = _error_kind(exc)
                    nxt = None
                    if call.report(error=kind, outcome=self._outcome(request, None, exc, default)):
                        nxt = await next_peer_async(call)
                    if nxt is None:
                        raise
                    peer, host, port = nxt
                    continue
                request.url, request.extensions = url, extensions
                outcome = self._outcome(request, response, None, None)
                if not call.report(status=response.status_code, outcome=outcome):
                    return response
                nxt = await next_peer_async(call)
                if nxt is None:
                    return response
                peer, host, port = nxt
                await _discard_async(response)
        finally:
            request.url, request.extensions = url, extensions

    async def aclose(self) -> None:
        await self._inner.aclose()

