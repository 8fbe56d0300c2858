"""Balancing inside the HTTP clients Python programs already use: httpx (sync and async)
and requests, with peerlb choosing the server for every request.

Starts four ``http.server`` processes on 127.0.0.1 (free ports) and sends GETs to
``http://orders.internal/`` through ``httpx.Client(transport=peerlb.httpx.Transport(lst))``,
``httpx.AsyncClient(transport=peerlb.httpx.AsyncTransport(lst))`` and a ``requests``
session with ``peerlb.requests.Adapter(lst)`` mounted. Halfway, one server is killed: the
integrations send its requests to another peer (the caller sees no error), and the list
ejects it. The servers answer with the ``Host`` they were sent, which must stay
``orders.internal``.

    python examples/python/http_clients.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import http.server
import subprocess
import sys
from typing import Dict, List

import httpx
import requests

import peerlb
import peerlb.httpx
import peerlb.requests

URL = "http://orders.internal/"


class Hello(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: a connection per request, so a killed server refuses the next one at once.
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        assert isinstance(self.server, http.server.HTTPServer)
        body = f"{self.server.server_port} {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve() -> None:
    """Child process: serve on a free port, print it, run until killed."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def start_servers(n: int) -> Dict[str, "subprocess.Popen[str]"]:
    servers: Dict[str, subprocess.Popen[str]] = {}
    for _ in range(n):
        proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        servers[f"127.0.0.1:{proc.stdout.readline().strip()}"] = proc
    return servers


def answer(text: str, counts: "collections.Counter[str]") -> None:
    port, host = text.split(" ")
    assert host == "orders.internal", f"Host not kept: {host}"
    counts[f"127.0.0.1:{port}"] += 1


async def async_burst(lst: peerlb.PeerList, n: int, counts: "collections.Counter[str]") -> None:
    async with httpx.AsyncClient(transport=peerlb.httpx.AsyncTransport(lst)) as client:
        for response in await asyncio.gather(*(client.get(URL) for _ in range(n))):
            answer(response.text, counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400, help="requests per client, in all")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    servers = start_servers(4)
    try:
        with peerlb.PeerList("random", seed=7) as lst:
            lst.update(add=list(servers))
            print(f"peers: {', '.join(servers)}")
            client = httpx.Client(transport=peerlb.httpx.Transport(lst))
            session = requests.Session()
            session.mount("http://orders.internal/", peerlb.requests.Adapter(lst))
            counts: Dict[str, collections.Counter[str]] = {
                name: collections.Counter() for name in ("httpx", "httpx async", "requests")}
            dead = list(servers)[1]
            half = args.requests // 2
            for phase in ("before", "after"):
                if phase == "after":
                    servers[dead].kill()
                    servers[dead].wait()
                    print(f"killed {dead}")
                for _ in range(half):
                    answer(client.get(URL).text, counts["httpx"])
                    answer(session.get(URL).text, counts["requests"])
                asyncio.run(async_burst(lst, half, counts["httpx async"]))
            client.close()
            session.close()

            print(f"{2 * half} GETs through each client, 0 errors seen by the caller, Host kept:")
            for name, per_peer in counts.items():
                print(f"  {name:12} " + "  ".join(f"{p}: {per_peer[p]:3}" for p in servers))
            backends = lst.list_backends()
            ejected: List[str] = [b["id"] for b in backends if b["ejected"]]
            print(f"ejected: {', '.join(ejected) or 'none'}; list: {lst.introspect()['summary']}")
            assert ejected == [dead], ejected
            for per_peer in counts.values():
                assert sum(per_peer.values()) == 2 * half
    finally:
        for proc in servers.values():
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
