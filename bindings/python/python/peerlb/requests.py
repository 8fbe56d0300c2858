"""peerlb inside requests: every request of a session goes to the peer the list chooses.

::

    import requests, peerlb, peerlb.requests

    lst = peerlb.PeerList("fewest-pending")
    lst.update(add=["10.0.0.1:8080", "10.0.0.2:8080"])
    lst.start()
    session = requests.Session()
    session.mount("http://orders.internal/", peerlb.requests.Adapter(lst))
    session.get("http://orders.internal/v1/orders")      # sent to 10.0.0.x:8080

Each request is sent to the chosen ``host:port`` with the URL's own ``Host`` header (and,
for ``https``, the URL's host as TLS server name and certificate name), and judged by the
core's request rule (``peerlb.RequestRule``), exactly as ``peerlb.httpx`` does: connect
errors, resets, timeouts and 5xx count against the peer, and a failed idempotent request
(``GET``, ``HEAD``, ``OPTIONS``, ``TRACE``, ``PUT``, ``DELETE``) whose body is in memory is
sent to another peer while the rule allows; one that never connected, whatever its method.
To retry other methods on a route, mount an adapter whose rule says so:
``session.mount("http://orders.internal/idempotent/", Adapter(lst,
rule=peerlb.RequestRule(retry_any_method=True)))``. When no retry follows, the caller gets
the last response or exception, as without peerlb; when no peer can be chosen,
``requests.ConnectionError`` whose ``__cause__`` is the ``peerlb`` error.

``classify(request, response, exception)`` (optional) may override the rule's outcome:
``"ok"``, ``"failure"``, ``"declined"``, ``"cancelled"``, or ``None`` to keep it. The
``timeout`` of each call applies to each attempt; a rule ``timeout`` bounds the whole
request (each attempt's timeout is capped by what is left).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, Union

import requests
import requests.adapters
import requests.cookies
import urllib3.exceptions
from requests.models import PreparedRequest, Response
from urllib3.util import parse_url

from ._errors import PeerlbError
from ._http import next_peer
from ._peerlb import PeerList, RequestRule, _RequestCall

__all__ = ["Adapter", "Classifier"]

if TYPE_CHECKING:
    from ._peerlb import _AttemptError, _Outcome

Classifier = Callable[[PreparedRequest, Optional[Response], Optional[BaseException]], Optional[str]]
"""``classify(request, response, exception)``: ``response`` is set when the peer answered
(its body not read yet unless the call preloads it), ``exception`` when it did not.
Returns an outcome (``"ok"``, ``"failure"``, ``"declined"``, ``"cancelled"``; anything
else is ``InvalidArgument``) or ``None``."""

_Timeout = Union[None, float, Tuple[Optional[float], Optional[float]]]


def _error_kind(exc: requests.RequestException) -> "tuple[_AttemptError, Optional[_Outcome]]":
    """The rule's name for a failed send, and an outcome when the peer is not to blame."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connect-failed", None
    if isinstance(exc, requests.ReadTimeout):
        return "timed-out", None
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
                        requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema)):
        return "failed", "cancelled"
    if isinstance(exc, requests.exceptions.SSLError):
        return "failed", None
    if isinstance(exc, requests.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps it
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return "connect-failed", None
        if isinstance(reason, urllib3.exceptions.ProtocolError):
            return "reset", None
        if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
            return "timed-out", None
        return "reset", None
    return "failed", None


def _replayable(request: PreparedRequest) -> bool:
    """Whether the body can be sent again: none, or in memory (not a file or generator)."""
    return request.body is None or isinstance(request.body, (bytes, str))


def _capped(timeout: _Timeout, remaining: Optional[float]) -> _Timeout:
    """``timeout`` with each part capped by what is left of the rule's timeout."""
    if remaining is None:
        return timeout
    if isinstance(timeout, tuple):
        connect, read = timeout
        return (remaining if connect is None else min(connect, remaining),
                remaining if read is None else min(read, remaining))
    return remaining if timeout is None else min(timeout, remaining)


def _as_sent_to_url(response: Response, request: PreparedRequest, url: str) -> None:
    """What ``HTTPAdapter`` recorded with the peer's address, recorded with the URL's: the
    response's ``url`` (redirects resolve against it) and its cookies' domain."""
    response.url = url
    if "set-cookie" in response.headers:
        response.cookies = requests.cookies.RequestsCookieJar()
        requests.cookies.extract_cookies_to_jar(response.cookies, request, response.raw)


def _discard(response: Response) -> None:
    """Reads and closes a response no one will see (reading it to the end lets its
    connection go back to the pool)."""
    try:
        response.content
    except requests.RequestException:
        pass
    finally:
        response.close()


class Adapter(requests.adapters.HTTPAdapter):
    """A ``requests`` transport adapter that balances every request over ``lst`` (see the
    module docs); mount it on a session for the service's URL prefix. ``rule`` is a
    ``peerlb.RequestRule`` (default: the core's defaults, with a retry budget of this
    adapter's own); the other keyword arguments are ``HTTPAdapter``'s (``pool_connections``,
    ``pool_maxsize``, ``pool_block``; ``max_retries`` is 0: peerlb retries, on other peers).
    """

    def __init__(
        self,
        lst: PeerList,
        *,
        rule: Optional[RequestRule] = None,
        classify: Optional[Classifier] = None,
        **adapter_options: Any,
    ) -> None:
        if not isinstance(lst, PeerList):
            raise TypeError(f"the list must be a peerlb.PeerList, not {type(lst).__name__}")
        if rule is not None and not isinstance(rule, RequestRule):
            raise TypeError(f"rule must be a peerlb.RequestRule or None, not {type(rule).__name__}")
        if classify is not None and not callable(classify):
            raise TypeError(f"classify must be callable or None, not {type(classify).__name__}")
        if adapter_options.get("max_retries", 0) != 0:
            raise ValueError("max_retries must be 0: the request rule retries, on other peers")
        super().__init__(**adapter_options)
        self._list = lst
        self._rule = rule if rule is not None else RequestRule()
        self._classify = classify

    def __getstate__(self) -> "dict[str, Any]":
        raise TypeError("a peerlb.requests.Adapter cannot be pickled (it holds a live PeerList)")

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Optional[Dict[str, str]] = None,
    ) -> Response:
        method = request.method or "GET"
        call = _RequestCall(self._rule, self._list, method, _replayable(request), None)
        try:
            peer, host, port = call.choose()
        except PeerlbError as e:
            raise requests.ConnectionError(f"peerlb: no peer for {method} {request.url}: {e}", request=request) from e
        url = request.url or ""
        parsed = parse_url(url)
        scheme = parsed.scheme or "http"
        had_host = "Host" in request.headers
        try:
            while True:
                netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                request.url = f"{scheme}://{netloc}{request.path_url}"
                if not had_host:
                    request.headers["Host"] = parsed.netloc or ""
                if scheme == "https":
                    request._peerlb_tls_name = parsed.host  # type: ignore[attr-defined]
                try:
                    response = super().send(
                        request, stream=stream, timeout=_capped(timeout, call.remaining),
                        verify=verify, cert=cert, proxies=proxies,
                    )
                except requests.RequestException as exc:
                    self._restore(request, url, had_host)
                    kind, default = _error_kind(exc)
                    nxt = None
                    if call.report(error=kind, outcome=self._outcome(request, None, exc, default)):
                        nxt = next_peer(call)
                    if nxt is None:
                        raise
                    peer, host, port = nxt
                    continue
                self._restore(request, url, had_host)
                _as_sent_to_url(response, request, url)
                if not call.report(status=response.status_code, outcome=self._outcome(request, response, None, None)):
                    return response
                nxt = next_peer(call)
                if nxt is None:
                    return response
                peer, host, port = nxt
                _discard(response)
        finally:
            self._restore(request, url, had_host)

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> "tuple[dict[str, Any], dict[str, Any]]":
        """``HTTPAdapter``'s, with the URL's host as TLS server name and certificate name
        (the pool's address is the peer's)."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        name = getattr(request, "_peerlb_tls_name", None)
        if name:
            pool_kwargs = {**pool_kwargs, "server_hostname": name, "assert_hostname": name}
        return host_params, pool_kwargs

    @staticmethod
    def _restore(request: PreparedRequest, url: str, had_host: bool) -> None:
        request.url = url
        if not had_host:
            request.headers.pop("Host", None)
        if hasattr(request, "_peerlb_tls_name"):
            del request._peerlb_tls_name  # type: ignore[attr-defined]

    def _outcome(
        self,
        request: PreparedRequest,
        response: Optional[Response],
        exc: Optional[BaseException],
        default: Optional[_Outcome],
    ) -> Optional[str]:
        if self._classify is None:
            return default
        outcome = self._classify(request, response, exc)
        return default if outcome is None else outcome
