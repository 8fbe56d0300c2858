"""Operability from Python: names and metrics, circuit breakers (``Overloaded``), the admin
endpoint driven by a real HTTP client (urllib), and the http-probe / grpc-health transports
against real servers this test runs (an ``http.server`` and a grpcio health server, each
flipping between healthy and not)."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

import peerlb


def running(name: str, **kwargs: Any) -> peerlb.PeerList:
    lst = peerlb.PeerList(name=name, shuffle=False, **kwargs)
    lst.update(add=["a:1", "b:1"])
    lst.start()
    return lst


def test_names_and_metrics() -> None:
    lst = running("py-metrics")
    assert lst.name == "py-metrics"
    assert lst.introspect()["name"] == "py-metrics"
    with lst.choose() as c:
        assert c.peer == "a:1"
    lst.choose().finish("failure", latency=0.003)
    text = lst.metrics()
    assert 'peerlb_chosen_total{list="py-metrics",peer="a:1"} 1\n' in text
    assert 'peerlb_finished_total{list="py-metrics",peer="b:1",outcome="failure"} 1\n' in text
    assert 'peerlb_request_duration_seconds_count{list="py-metrics",peer="b:1"} 1\n' in text
    assert 'peerlb_peers{list="py-metrics"} 2' in peerlb.metrics()
    assert peerlb.PeerList().name.startswith("list-")
    assert peerlb.PeerList(metrics=False).metrics() == ""
    collapsed = running("py-collapsed", peer_labels=False)
    collapsed.choose().finish()
    assert 'peerlb_chosen_total{list="py-collapsed"} 1\n' in collapsed.metrics()


def test_bad_options() -> None:
    with pytest.raises(TypeError):
        peerlb.PeerList(name=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.PeerList(metrics="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.PeerList(max_pending=1.5)  # type: ignore[arg-type]
    for kwargs in ({"name": "two words"}, {"name": ""}, {"name": "x" * 129},
                   {"max_pending": 0}, {"max_pending_per_peer": 0}, {"max_pending": -1},
                   {"max_pending": 10**30}):
        with pytest.raises(peerlb.InvalidArgument):
            peerlb.PeerList(**kwargs)  # type: ignore[arg-type]


def test_circuit_breakers_raise_overloaded() -> None:
    assert "overloaded" in dict(peerlb.ERROR_CODES)
    lst = running("py-breakers", max_pending=3, max_pending_per_peer=1)
    a = lst.choose(timeout=2)
    b = lst.choose(timeout=2)
    with pytest.raises(peerlb.Overloaded) as e:
        lst.choose(timeout=2)
    assert e.value.code == "overloaded"
    assert isinstance(e.value, peerlb.PeerlbError)
    info = lst.introspect()
    assert (info["max_pending"], info["max_pending_per_peer"], info["overloaded"]) == (3, 1, 1)
    assert info["pending"] == 2
    a.finish()
    assert lst.choose().peer == "a:1"
    b.finish()


def test_overloaded_async() -> None:
    import asyncio

    async def main() -> None:
        lst = running("py-breakers-async", max_pending=1)
        held = await lst.choose_async(timeout=1)
        with pytest.raises(peerlb.Overloaded):
            await lst.choose_async(timeout=1)
        held.finish()

    asyncio.run(main())


def request(url: str, method: str = "GET", body: Optional[bytes] = None,
            token: Optional[str] = None) -> Tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def test_admin_endpoint_with_a_real_http_client() -> None:
    lst = running("py-admin")
    with peerlb.serve_admin(":0", token="s3cret") as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        base = f"{server.url}/lists/py-admin"
        status, body = request(f"{server.url}/lists")
        assert status == 401 and body["error"] == "unauthorized"
        status, body = request(f"{server.url}/lists", token="s3cret")
        assert status == 200 and "py-admin" in [x["name"] for x in body]
        status, body = request(f"{base}/backends/a:1/disable", "POST", token="s3cret")
        assert status == 200 and body["result"] == "success"
        assert body["code"] == peerlb.AdminResult.SUCCESS  # the admin result number, 1
        status, body = request(f"{base}/backends/a:1/disable", "POST", token="s3cret")
        assert status == 200 and body["code"] == peerlb.AdminResult.NO_ACTION_REQUIRED
        assert lst.introspect()["disabled"] == 1
        status, body = request(f"{base}/backends", "POST", b'{"id": "c:1", "weight": 2}', token="s3cret")
        assert status == 201 and body["code"] == 1 and body["backend"]["weight"] == 2
        status, body = request(f"{base}/backends", "POST", b'{"id": "c:1"}', token="s3cret")
        assert status == 409 and body["code"] == 4 and body["error"] == "peer-already-in-list"
        status, body = request(f"{base}/backends", "POST", b"{nope", token="s3cret")
        assert status == 400 and body["error"] == "invalid-argument"
        status, body = request(f"{base}/backends/zzz", token="s3cret")
        assert status == 404 and body["error"] == "peer-not-in-list"
        status, body = request(f"{server.url}/lists/nope/backends", token="s3cret")
        assert status == 404 and body["error"] == "list-not-found"
        status, body = request(f"{base}/backends", "PUT", token="s3cret")
        assert status == 405
        status, body = request(f"{base}/backends/c:1", "DELETE", token="s3cret")
        assert status == 200 and len(lst) == 2
        status, text = request(f"{server.url}/metrics", token="s3cret")
        assert status == 200 and 'peerlb_peer_disabled{list="py-admin",peer="a:1"} 1' in text
        url = server.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/lists", timeout=5)
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.serve_admin("not an address")
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.serve_admin(token="has space")
    with pytest.raises(TypeError):
        peerlb.serve_admin(9901)  # type: ignore[arg-type]


class Flip:
    """An HTTP server on 127.0.0.1 answering 200 while ``up``, else 503."""

    def __init__(self) -> None:
        self.up = True
        self.requests: Dict[str, int] = {"ok": 0, "unavailable": 0}
        flip = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                flip.requests["ok" if flip.up else "unavailable"] += 1
                self.send_response(200 if flip.up else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.id = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flip() -> Iterator[Flip]:
    f = Flip()
    yield f
    f.close()


def wait_status(lst: peerlb.PeerList, want: str) -> float:
    t0 = time.monotonic()
    while lst.introspect()["peers"][0]["status"] != want:
        assert time.monotonic() - t0 < 20, f"never {want}"
        time.sleep(0.005)
    return time.monotonic() - t0


def test_http_probe_follows_a_flipping_server(flip: Flip) -> None:
    spec = "http-probe?path=/healthz&expect=200-299&interval_ms=50&unhealthy_threshold=2"
    lst = peerlb.PeerList(transport=spec)
    lst.update(add=[flip.id])
    lst.start()
    assert lst.introspect()["transport"] == "http-probe"
    wait_status(lst, "available")
    flip.up = False
    wait_status(lst, "unavailable")
    assert flip.requests["unavailable"] >= 2
    flip.up = True
    wait_status(lst, "available")
    lst.stop()
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.PeerList(transport="http-probe?path=healthz")


def test_grpc_health_follows_a_flipping_server() -> None:
    try:
        from concurrent import futures

        import grpc  # type: ignore[import-untyped]
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
    except ImportError:
        if os.environ.get("PEERLB_REQUIRE_GRPC_HEALTH"):
            raise
        pytest.skip("grpcio-health-checking is not installed")
    servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    servicer.set("py.test", health_pb2.HealthCheckResponse.SERVING)
    server.start()
    try:
        lst = peerlb.PeerList(transport="grpc-health?service=py.test&interval_ms=50")
        lst.update(add=[f"127.0.0.1:{port}"])
        lst.start()
        wait_status(lst, "available")
        servicer.set("py.test", health_pb2.HealthCheckResponse.NOT_SERVING)
        wait_status(lst, "unavailable")
        servicer.set("py.test", health_pb2.HealthCheckResponse.SERVING)
        wait_status(lst, "available")
        lst.stop()
    finally:
        server.stop(grace=None)
