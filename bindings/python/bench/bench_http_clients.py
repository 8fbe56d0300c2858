"""The cost per request of the HTTP integrations: the same client with and without peerlb,
against the same local keep-alive HTTP/1.1 servers, in the same run.

    python bench_http_clients.py --out target/bench/python-http.md [--requests N] [--rounds R]

Pairs measured (each request a GET of a 2-byte body on a reused connection):

* ``httpx.Client`` to ``http://127.0.0.1:port/`` vs ``httpx.Client(transport=
  peerlb.httpx.Transport(lst))`` to ``http://svc.test/``;
* the same with ``httpx.AsyncClient`` / ``peerlb.httpx.AsyncTransport`` (sequential awaits);
* a ``requests.Session`` vs one with ``peerlb.requests.Adapter(lst)`` mounted.

The servers run in another process (so they do not share this one's GIL), one per peer;
the plain clients go to one of them. Rounds alternate the variants, and each variant's
number is the median over rounds of the mean per request in a round; the overhead is the
difference between a pair's medians, and its ratio to the plain client.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

import httpx
import requests

import peerlb
import peerlb.httpx
import peerlb.requests


class Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out")
    parser.add_argument("--requests", type=int, default=400, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    procs = [subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        peers = [f"127.0.0.1:{p.stdout.readline().strip()}" for p in procs if p.stdout is not None]
        direct = f"http://{peers[0]}/"
        service = "http://svc.test/"
        lst = peerlb.PeerList("round-robin", shuffle=False)
        lst.update(add=peers)
        lst.start()

        plain_httpx = httpx.Client()
        peerlb_httpx = httpx.Client(transport=peerlb.httpx.Transport(lst))
        plain_requests = requests.Session()
        peerlb_requests = requests.Session()
        peerlb_requests.mount(service, peerlb.requests.Adapter(lst))
        loop = asyncio.new_event_loop()
        plain_async = httpx.AsyncClient()
        peerlb_async = httpx.AsyncClient(transport=peerlb.httpx.AsyncTransport(lst))

        def sync(client: Callable[[str], object], url: str) -> Callable[[int], None]:
            def run(n: int) -> None:
                for _ in range(n):
                    client(url)
            return run

        def in_loop(client: httpx.AsyncClient, url: str) -> Callable[[int], None]:
            async def requests_(n: int) -> None:
                for _ in range(n):
                    (await client.get(url)).read()
            return lambda n: loop.run_until_complete(requests_(n))

        pairs = {
            "httpx.Client": (sync(plain_httpx.get, direct), sync(peerlb_httpx.get, service),
                             "peerlb.httpx.Transport"),
            "httpx.AsyncClient": (in_loop(plain_async, direct), in_loop(peerlb_async, service),
                                  "peerlb.httpx.AsyncTransport"),
            "requests.Session": (sync(plain_requests.get, direct), sync(peerlb_requests.get, service),
                                 "peerlb.requests.Adapter"),
        }
        samples: Dict[str, List[float]] = {}
        for plain, balanced, _ in pairs.values():
            plain(50)  # warm: connections made, code paths loaded
            balanced(50)
        for _ in range(args.rounds):
            for name, (plain, balanced, _) in pairs.items():
                for label, run in ((f"{name}|plain", plain), (f"{name}|peerlb", balanced)):
                    t0 = time.perf_counter()
                    run(args.requests)
                    samples.setdefault(label, []).append((time.perf_counter() - t0) / args.requests * 1e6)

        lines = [
            f"### Python HTTP integrations: cost per request (Python {sys.version.split()[0]}, "
            f"httpx {httpx.__version__}, requests {requests.__version__})",
            "",
            f"GET of 2 bytes over a kept-alive connection to a local `http.server` (another "
            f"process); median of {args.rounds} rounds of {args.requests} requests, variants "
            "alternating; `python bindings/python/bench/bench_http_clients.py`.",
            "",
            "| client | without peerlb (µs/request) | with peerlb | overhead (µs) | ratio |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, (_, _, integration) in pairs.items():
            plain_us = statistics.median(samples[f"{name}|plain"])
            balanced_us = statistics.median(samples[f"{name}|peerlb"])
            lines.append(f"| `{name}` / `{integration}` | {plain_us:.1f} | {balanced_us:.1f} | "
                         f"{balanced_us - plain_us:+.1f} | {balanced_us / plain_us:.2f}× |")
        report = "\n".join(lines) + "\n"
        print(report)
        if args.out:
            with open(args.out, "w") as f:
                f.write(report)

        plain_httpx.close()
        peerlb_httpx.close()
        loop.run_until_complete(plain_async.aclose())
        loop.run_until_complete(peerlb_async.aclose())
        loop.close()
        lst.stop()
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
