"""A real Prometheus scrapes a real peerlb admin endpoint.

Runs the `serve_metrics` example (a list under traffic with its admin endpoint on a free
loopback port), checks its /metrics with `promtool check metrics`, starts `prometheus` on a
free loopback port with a temporary config that scrapes the endpoint every second, and asks
Prometheus's HTTP query API until `peerlb_chosen_total{peer=...}` has grown between two
scrapes. Every wait has a deadline of seconds; everything started is stopped at the end.

    python3 tests/ops/prometheus_scrape.py EXAMPLE_BINARY [--prometheus BIN] [--promtool BIN]

Prints `prometheus: N passed, M failed` and exits non-zero on any failure.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from typing import Callable

PEER = "10.0.0.1:80"
passed = failed = 0


def check(ok: bool, what: str) -> None:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {what}")
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def query(base: str, promql: str) -> list:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    answer = json.loads(get(url))
    return answer["data"]["result"] if answer.get("status") == "success" else []


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("example")
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "prometheus")
    ap.add_argument("--promtool", default=shutil.which("promtool") or "promtool")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="peerlb-prometheus-")
    procs = []
    try:
        app = subprocess.Popen([args.example, "--seconds", "0", "--quiet"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(app)
        line = app.stdout.readline()
        check(line.startswith("admin endpoint: http://127.0.0.1:"), f"the example serves: {line.strip()}")
        endpoint = line.split()[-1]
        target = endpoint.removeprefix("http://")

        # promtool on the exposition (the Prometheus text format).
        time.sleep(0.5)
        text = get(f"{endpoint}/metrics")
        lint = subprocess.run([args.promtool, "check", "metrics"], input=text, text=True,
                              capture_output=True)
        check(lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(),
              f"promtool check metrics: exit {lint.returncode} {lint.stdout}{lint.stderr}".strip())

        port = free_port()
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: peerlb\n"
                f"    static_configs:\n      - targets: ['{target}']\n"
            )
        check(subprocess.run([args.promtool, "check", "config", config], capture_output=True).returncode == 0,
              "promtool check config")
        prom = subprocess.Popen(
            [args.prometheus, f"--config.file={config}", f"--storage.tsdb.path={work}/data",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "prometheus.log"), "w"))
        procs.append(prom)
        base = f"http://127.0.0.1:{port}"

        deadline = time.monotonic() + 60
        up = False
        while time.monotonic() < deadline and not up:
            try:
                targets = json.loads(get(f"{base}/api/v1/targets"))["data"]["activeTargets"]
                up = any(t["health"] == "up" for t in targets)
            except OSError:
                pass
            if not up:
                time.sleep(0.5)
        check(up, "Prometheus reports the peerlb target up")

        promql = f'peerlb_chosen_total{{list="demo-api",peer="{PEER}"}}'
        first = None
        grew = False
        while time.monotonic() < deadline and not grew:
            result = query(base, promql)
            if result:
                value = float(result[0]["value"][1])
                if first is None:
                    first = value
                elif value > first:
                    grew = True
                    print(f"{promql}: {first:.0f} -> {value:.0f}")
            if not grew:
                time.sleep(0.5)
        check(first is not None, f"Prometheus has {promql}")
        check(grew, f"{promql} grows while traffic flows")
        def until(promql: str, ok: Callable[[list], bool]) -> list:
            result: list = []
            while time.monotonic() < deadline:
                result = query(base, promql)
                if ok(result):
                    break
                time.sleep(0.5)
            return result

        rate = until(f'sum(rate(peerlb_chosen_total{{list="demo-api"}}[5s]))', bool)
        check(bool(rate), "rate() over the scraped counter answers")
        hist = until('histogram_quantile(0.99, sum by (le, peer) '
                     '(rate(peerlb_request_duration_seconds_bucket{list="demo-api"}[5s])))',
                     lambda r: len(r) == 4)
        check(len(hist) == 4, f"a p99 latency per peer from the histogram ({len(hist)} peers)")
    finally:
        for p in reversed(procs):
            if p.stdin:
                p.stdin.close()
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if failed:
            log = os.path.join(work, "prometheus.log")
            if os.path.exists(log):
                print(open(log).read()[-3000:], file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    print(f"prometheus: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
