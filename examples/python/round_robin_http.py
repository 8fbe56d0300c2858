"""Round-robin HTTP requests across local servers, with peerlb choosing the server.

Starts three ``http.server`` processes on 127.0.0.1 (free ports), sends requests with
``urllib`` to whichever peer peerlb chooses, then stops one server to show a failed
request being finished as ``failure`` and the dead peer being removed from the list.

    python examples/python/round_robin_http.py [--requests N] [--servers N]
"""

from __future__ import annotations

import argparse
import collections
import http.server
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Dict, List

import peerlb


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = f"hello from {getattr(self.server, 'server_port', 0)}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve() -> None:
    """Child process: serve on a free port, print it, run until killed."""
    server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def start_servers(n: int) -> Dict[str, "subprocess.Popen[str]"]:
    servers: Dict[str, subprocess.Popen[str]] = {}
    for _ in range(n):
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        servers[f"127.0.0.1:{port}"] = proc
    return servers


def get(peer: str) -> str:
    with urllib.request.urlopen(f"http://{peer}/", timeout=2) as resp:
        return str(resp.read().decode().strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    servers = start_servers(args.servers)
    try:
        with peerlb.PeerList("round-robin", shuffle=False) as lst:
            lst.update(add=list(servers))
            print(f"peers: {', '.join(servers)}")

            counts: collections.Counter[str] = collections.Counter()
            for _ in range(args.requests):
                with lst.choose(timeout=1.0) as choice:
                    counts[choice.peer] += 1
                    get(choice.peer)
            print(f"{args.requests} requests, round-robin:")
            for peer in servers:
                print(f"  {peer}: {counts[peer]}")

            # Stop one server: its next request fails, the `with` records a failure, and
            # we take the peer out of the list (a health checker would do this for us).
            dead = list(servers)[0]
            servers[dead].kill()
            servers[dead].wait()
            failures: List[str] = []
            ok = 0
            for _ in range(args.requests):
                try:
                    with lst.choose(timeout=1.0) as choice:
                        get(choice.peer)
                        ok += 1
                except (urllib.error.URLError, ConnectionError) as e:
                    failures.append(choice.peer)
                    print(f"  {choice.peer} failed ({e}); removing it")
                    lst.update(remove=[choice.peer])
            print(f"after stopping {dead}: {ok} ok, {len(failures)} failed, "
                  f"list now {lst.introspect()['summary']}")
            assert failures == [dead], failures
            assert ok == args.requests - 1
            assert sum(counts.values()) == args.requests
            assert max(counts.values()) - min(counts.values()) <= 1
    finally:
        for proc in servers.values():
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
