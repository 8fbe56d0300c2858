"""peerlb.EtcdUpdater against a real etcd (the `etcd` binary from the etcd-server package,
or $PEERLB_ETCD), run by `make test-updaters-etcd` with a wheel built with the `etcd`
feature. Fails (never skips) without etcd."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from typing import Callable, Iterator, List, Tuple

import pytest

import peerlb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class Etcd:
    def __init__(self) -> None:
        binary = os.environ.get("PEERLB_ETCD") or shutil.which("etcd")
        assert binary, "no etcd binary (install etcd-server or set PEERLB_ETCD); not skipping"
        self.dir = tempfile.mkdtemp()
        cp, pp = free_port(), free_port()
        self.url = f"http://127.0.0.1:{cp}"
        peer = f"http://127.0.0.1:{pp}"
        self.proc = subprocess.Popen(
            [binary, "--name", "t", "--data-dir", self.dir,
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"t={peer}", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.put("/ready", "1")
                break
            except OSError:
                assert time.monotonic() < deadline, "etcd did not start"
                time.sleep(0.05)

    def call(self, path: str, body: dict) -> None:  # type: ignore[type-arg]
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=2).read()

    def put(self, key: str, value: str) -> None:
        self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def delete(self, key: str) -> None:
        self.call("/v3/kv/deleterange", {"key": b64(key)})

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def etcd() -> Iterator[Etcd]:
    e = Etcd()
    yield e
    e.close()


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.002)
    return time.monotonic() - start


def peers(lst: peerlb.PeerList) -> List[Tuple[str, int]]:
    return sorted((p["id"], p["weight"]) for p in lst.introspect()["peers"])


def test_etcd_updater_follows_a_prefix(etcd: Etcd) -> None:
    etcd.put("/svc/a", "10.0.0.1:80")
    etcd.put("/svc/b", json.dumps({"addr": "10.0.0.2:80", "weight": 4}))
    lst = peerlb.PeerList()
    up = peerlb.EtcdUpdater([etcd.url], "/svc/", timeout=0.5, retry_interval=0.1)
    with up.bind(lst) as b:
        wait_for("initial", lambda: peers(lst) == [("10.0.0.1:80", 1), ("10.0.0.2:80", 4)])
        t0 = time.monotonic()
        etcd.put("/svc/10.0.0.3:80", "")
        wait_for("put", lambda: len(lst) == 3)
        print(f"python: etcd put reached the list in {(time.monotonic() - t0) * 1000:.1f} ms")
        etcd.delete("/svc/a")
        wait_for("delete", lambda: peers(lst) == [("10.0.0.2:80", 4), ("10.0.0.3:80", 1)])
        etcd.put("/svc/bad", "not a peer")
        wait_for("bad", lambda: isinstance(b.last_error, peerlb.SourceFailed))
        assert "/svc/bad" in str(b.last_error)
        etcd.proc.kill()
        etcd.proc.wait()
        time.sleep(0.3)
        assert peers(lst) == [("10.0.0.2:80", 4), ("10.0.0.3:80", 1)], "last good set kept"
        assert b.last_error is not None


def test_etcd_updater_bad_arguments() -> None:
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.EtcdUpdater([], "/svc/")
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.EtcdUpdater(["http://127.0.0.1:1"], "")
