"""Smoke program for an installed `peerlb` wheel or sdist: the core API, then httpx and
requests balanced over two local HTTP servers, one of them stopped halfway (every request
must still succeed, the stopped one must be ejected). Exits non-zero on any failure."""

from __future__ import annotations

import http.server
import sys
import threading

import httpx
import requests

import peerlb
import peerlb.httpx
import peerlb.requests


class Hello(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: a connection per request, so a stopped server refuses the next one.

    def do_GET(self) -> None:  # noqa: N802
        body = f"hello via {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def main() -> None:
    servers = [serve() for _ in range(3)]
    peers = [f"127.0.0.1:{s.server_address[1]}" for s in servers]
    with peerlb.PeerList("round-robin", shuffle=False) as lst:
        lst.update(add=peers)
        with lst.choose(timeout=1.0) as c:
            assert c.peer == peers[0]
        client = httpx.Client(transport=peerlb.httpx.Transport(lst))
        session = requests.Session()
        session.mount("http://svc.test", peerlb.requests.Adapter(lst))
        for i in range(60):
            if i == 30:
                servers[1].shutdown()
                servers[1].server_close()
            assert client.get("http://svc.test/").text == "hello via svc.test"
            assert session.get("http://svc.test/").text == "hello via svc.test"
        ejected = [p["id"] for p in lst.list_backends() if p["ejected"]]
        assert ejected == [peers[1]], ejected
    print(f"python smoke: peerlb {peerlb.__version__} on Python {sys.version.split()[0]}: ok "
          f"(120 requests through httpx and requests, one server stopped, ejected)")


if __name__ == "__main__":
    main()
