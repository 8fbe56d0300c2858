"""Retry and outlier ejection over local HTTP servers, with peerlb choosing the server.

Starts four ``http.server`` threads on 127.0.0.1 (free ports) and sends requests through
``lst.retry``: a refused connection is a failed attempt, retried on another server. Then it
shuts one server down: the retries hide the failures from the caller, the dead server is
ejected after five failures (event ``ejected``) and gets no more requests, and after the
ejection time (``--eject-ms``, short here) it is tried again (event ``restored``).

    python examples/python/retry_ejection_http.py [--requests N] [--eject-ms MS]
"""

from __future__ import annotations

import argparse
import collections
import http.server
import threading
import urllib.request
from typing import List

import peerlb


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def start_server() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get(peer: str) -> str:
    """One HTTP request; any exception (refused, timeout) is this attempt's failure."""
    with urllib.request.urlopen(f"http://{peer}/", timeout=2) as resp:
        return str(resp.read().decode().strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--eject-ms", type=int, default=1000)
    args = parser.parse_args()

    servers = [start_server() for _ in range(4)]
    peers = [f"127.0.0.1:{s.server_address[1]}" for s in servers]
    events: List[str] = []
    restored = threading.Event()

    def on_event(e: peerlb.PeerEvent) -> None:
        if e.kind in ("ejected", "restored"):
            events.append(f"{e} ({e.detail})" if e.detail else str(e))
        if e.kind == "restored":
            restored.set()

    lst = peerlb.PeerList("round-robin", shuffle=False, ejection={"base_ms": args.eject_ms})
    lst.subscribe(on_event)
    lst.update(add=peers)
    with lst:
        print(f"peers: {', '.join(peers)}")
        dead = servers[1]
        dead.shutdown()
        dead.server_close()
        dead_peer = peers[1]
        print(f"stopped {dead_peer}")

        tried: collections.Counter[str] = collections.Counter()

        def fetch(peer: str) -> str:
            tried[peer] += 1
            return get(peer)

        ok = sum(lst.retry(fetch, max_attempts=3, timeout=5.0) == "hello" for _ in range(args.requests))
        print(f"{args.requests} retried requests: {ok} ok; attempts per peer: {dict(tried)}")
        info = {p["id"]: p for p in lst.list_backends()}[dead_peer]
        print(f"{dead_peer}: ejected={info['ejected']} failures={info['failures']}")
        assert ok == args.requests, "a retried request failed"
        # Five failures eject it (more only if the requests outlasted the ejection time).
        assert tried[dead_peer] >= 5, "the dead peer should have been tried five times"

        if not restored.wait(10):
            raise SystemExit("the ejected peer was never restored")
        print(f"after {args.eject_ms} ms: {dead_peer} is back in rotation")
        before = tried[dead_peer]
        # Round-robin over four peers reaches it within four requests: refused again,
        # retried elsewhere, so every request still succeeds.
        assert all(lst.retry(fetch, max_attempts=3) == "hello" for _ in range(4))
        print(f"{dead_peer} got {tried[dead_peer] - before} attempt(s) after its restore")
        assert tried[dead_peer] > before
    print("events:")
    for e in events:
        print(f"  {e}")


if __name__ == "__main__":
    main()
