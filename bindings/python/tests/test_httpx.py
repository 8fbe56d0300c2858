"""peerlb.httpx against real local HTTP servers: Transport (httpx.Client) and
AsyncTransport (httpx.AsyncClient).

Nothing here depends on speed: waits end on events, and the only time bounds are seconds
wide (a timeout that was not honoured would take 30 s).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional

import httpx
import pytest

import peerlb
import peerlb.httpx
from http_backends import Backend, self_signed, start, total_hits

URL = "http://service.test:8080"


@pytest.fixture
def backends() -> Iterator[List[Backend]]:
    started = start(4)
    yield started
    for b in started:
        b.kill()


def running_list(backends: List[Backend], **options: object) -> peerlb.PeerList:
    lst = peerlb.PeerList("round-robin", shuffle=False, **options)  # type: ignore[arg-type]
    lst.update(add=[b.peer for b in backends])
    lst.start()
    return lst


def ejected(lst: peerlb.PeerList, peer: str) -> bool:
    return any(p["id"] == peer and p["ejected"] for p in lst.list_backends())


def test_killed_backend_costs_no_errors_and_is_ejected(backends: List[Backend]) -> None:
    lst = running_list(backends)
    errors = 0
    with httpx.Client(transport=peerlb.httpx.Transport(lst)) as client:
        for i in range(400):
            if i == 200:
                backends[2].kill()
            r = client.get(f"{URL}/")
            errors += r.status_code != 200
    assert errors == 0
    assert ejected(lst, backends[2].peer)
    # Ejection after 5 failures in a row: the dead one got at most its share of the first
    # half, plus nothing it could answer afterwards.
    assert backends[2].hits <= 100
    assert all(b.hits > 100 for b in backends if b is not backends[2])


def test_host_header_and_url_are_the_services(backends: List[Backend]) -> None:
    lst = running_list(backends)
    with httpx.Client(transport=peerlb.httpx.Transport(lst)) as client:
        for _ in range(8):
            r = client.get(f"{URL}/path?q=1")
            assert r.text.endswith("host=service.test:8080")
            assert str(r.request.url) == f"{URL}/path?q=1"
            assert str(r.url) == f"{URL}/path?q=1"
    assert all(b.hosts == {"service.test:8080"} for b in backends)


def test_post_is_not_retried_once_sent(backends: List[Backend]) -> None:
    lst = running_list(backends)
    with httpx.Client(transport=peerlb.httpx.Transport(lst)) as client:
        before = total_hits(backends)
        r = client.post(f"{URL}/fail", content=b"order=1")
        assert r.status_code == 503
        assert total_hits(backends) - before == 1
        before = total_hits(backends)
        r = client.get(f"{URL}/fail")
        assert r.status_code == 503  # the last attempt's answer
        assert total_hits(backends) - before == 3
        # Opted in per request: retried like a GET.
        before = total_hits(backends)
        r = client.post(f"{URL}/fail", content=b"x", extensions={"peerlb.idempotent": True})
        assert total_hits(backends) - before == 3
        # A body read once (a generator) is never sent twice.
        before = total_hits(backends)
        r = client.put(f"{URL}/fail", content=iter([b"chunk"]))
        assert r.status_code == 503 and total_hits(backends) - before == 1


def test_post_that_never_connected_goes_elsewhere(backends: List[Backend]) -> None:
    lst = running_list(backends, ejection=False)
    backends[0].kill()
    with httpx.Client(transport=peerlb.httpx.Transport(lst)) as client:
        for _ in range(8):
            assert client.post(f"{URL}/", content=b"order=1").status_code == 200


def test_budget_stops_a_retry_storm(backends: List[Backend]) -> None:
    lst = running_list(backends)
    rule = peerlb.RequestRule(budget=peerlb.RetryBudget(ratio=0.1, min_per_sec=0))
    with httpx.Client(transport=peerlb.httpx.Transport(lst, rule=rule)) as client:
        before = total_hits(backends)
        for _ in range(100):
            assert client.get(f"{URL}/fail").status_code == 503
    attempts = total_hits(backends) - before
    print(f"100 failing GETs under a 10% budget: {attempts} attempts (300 without it)")
    assert attempts <= 110


def test_timeouts_are_honoured(backends: List[Backend]) -> None:
    lst = running_list(backends, ejection=False)
    with httpx.Client(transport=peerlb.httpx.Transport(lst), timeout=0.2) as client:
        before = total_hits(backends)
        t0 = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"{URL}/hang")
        assert time.monotonic() - t0 < 10
        assert total_hits(backends) - before == 3  # each attempt timed out, then another peer
    rule = peerlb.RequestRule(timeout=0.3)
    with httpx.Client(transport=peerlb.httpx.Transport(lst, rule=rule), timeout=20) as client:
        t0 = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            client.get(f"{URL}/hang")
        took = time.monotonic() - t0
        print(f"GET /hang under a rule timeout of 0.3 s (client timeout 20 s): raised after {took:.2f} s")
        assert took < 10


def test_classifier_overrides_the_rule(backends: List[Backend]) -> None:
    lst = running_list(backends)
    seen: List[int] = []

    def classify(
        request: httpx.Request, response: Optional[httpx.Response], exc: Optional[BaseException]
    ) -> Optional[str]:
        assert response is not None and exc is None
        seen.append(response.status_code)
        return "declined" if response.status_code == 503 else None

    with httpx.Client(transport=peerlb.httpx.Transport(lst, classify=classify)) as client:
        before = total_hits(backends)
        assert client.get(f"{URL}/fail").status_code == 503
        assert total_hits(backends) - before == 1  # declined: not retried
    assert seen == [503]
    assert all(p["failures"] == 0 for p in lst.list_backends())


def test_no_peer_is_a_connect_error() -> None:
    lst = peerlb.PeerList()
    with httpx.Client(transport=peerlb.httpx.Transport(lst)) as client:
        with pytest.raises(httpx.ConnectError) as info:
            client.get(f"{URL}/")
    assert isinstance(info.value.__cause__, peerlb.NotStarted)
    lst.update(add=["no-port-here"])
    lst.start()
    with httpx.Client(transport=peerlb.httpx.Transport(lst)) as client:
        with pytest.raises(httpx.ConnectError) as info:
            client.get(f"{URL}/")
    assert isinstance(info.value.__cause__, peerlb.InvalidArgument)
    assert "host:port" in str(info.value.__cause__)


def test_bad_arguments() -> None:
    lst = peerlb.PeerList()
    with pytest.raises(TypeError):
        peerlb.httpx.Transport("not a list")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.httpx.Transport(lst, rule="max_attempts=2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.httpx.Transport(lst, classify=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.httpx.Transport(lst, inner=httpx.HTTPTransport(), http2=False)
    lst.update(add=["127.0.0.1:9"])
    lst.start()
    with httpx.Client(transport=peerlb.httpx.Transport(lst)) as client:
        with pytest.raises(TypeError):
            client.get(f"{URL}/", extensions={"peerlb.idempotent": "yes"})
    with httpx.Client(transport=peerlb.httpx.Transport(lst, classify=lambda *_: "great")) as client:
        with pytest.raises(peerlb.InvalidArgument):
            client.get(f"{URL}/")
    assert lst.introspect()["peers"][0]["pending"] == 0


def test_https_keeps_the_tls_name(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "service.test")
    backends = start(2, (cert, key))
    try:
        lst = running_list(backends)
        verify = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(transport=peerlb.httpx.Transport(lst, verify=verify)) as client:
            for _ in range(4):
                r = client.get("https://service.test:8443/")
                assert r.status_code == 200 and r.text.endswith("host=service.test:8443")
        assert all(b.server_names == {"service.test"} for b in backends)
    finally:
        for b in backends:
            b.kill()


def test_async_killed_backend_and_post(backends: List[Backend]) -> None:
    async def main() -> None:
        lst = running_list(backends)
        async with httpx.AsyncClient(transport=peerlb.httpx.AsyncTransport(lst)) as client:
            errors = 0
            for i in range(400):
                if i == 200:
                    backends[1].kill()
                r = await client.get(f"{URL}/")
                errors += r.status_code != 200
            assert errors == 0
            assert ejected(lst, backends[1].peer)
            before = total_hits(backends)
            assert (await client.post(f"{URL}/fail", content=b"x")).status_code == 503
            assert total_hits(backends) - before == 1

    asyncio.run(main())


class SlowToStart:
    """A transport whose peers become available only when ``release_all`` says so."""

    def __init__(self) -> None:
        self.subscribers: List[peerlb.Subscriber] = []

    def retain(self, peer_id: str, subscriber: peerlb.Subscriber) -> None:
        self.subscribers.append(subscriber)

    def release(self, peer_id: str, subscriber: peerlb.Subscriber) -> None:
        pass

    def release_all(self) -> None:
        for s in self.subscribers:
            s.set_status("available")


def test_async_waits_do_not_block_the_event_loop(backends: List[Backend]) -> None:
    """A burst of 100 requests that must wait for a peer (none is available for 2 s): a
    10 ms timer keeps running while they wait. A blocking wait would hold the loop 2 s."""
    transport = SlowToStart()
    lst = peerlb.PeerList("round-robin", transport=transport)
    lst.update(add=[b.peer for b in backends])
    lst.start()
    rule = peerlb.RequestRule(timeout=20)

    async def main() -> "tuple[float, float]":
        lateness = {"waiting": 0.0, "sending": 0.0}
        phase = "waiting"
        stop = asyncio.Event()

        async def ticker() -> None:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                t0 = loop.time()
                await asyncio.sleep(0.01)
                late = loop.time() - t0 - 0.01
                lateness[phase] = max(lateness[phase], late)

        def release() -> None:
            nonlocal phase
            phase = "sending"
            transport.release_all()

        tick = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.05)
        threading.Timer(2.0, release).start()
        async with httpx.AsyncClient(transport=peerlb.httpx.AsyncTransport(lst, rule=rule)) as client:
            results = await asyncio.gather(*(client.get(f"{URL}/") for _ in range(100)))
        stop.set()
        await tick
        assert all(r.status_code == 200 for r in results)
        return lateness["waiting"], lateness["sending"]

    waiting, sending = asyncio.run(main())
    print(
        f"longest timer lateness: {waiting * 1000:.1f} ms while 100 requests waited 2 s for a peer, "
        f"{sending * 1000:.1f} ms while they were sent"
    )
    assert waiting < 1.0
