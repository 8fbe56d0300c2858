"""peerlb.XdsUpdater against a real ADS control plane (tests/xds/ads_server.py: grpcio +
xds-protos, run as a child process), run by `make test-updaters-python-xds` with a wheel
built with the `xds` feature. Fails (never skips) without the server's packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import peerlb

SERVER = Path(__file__).resolve().parents[3] / "tests" / "xds" / "ads_server.py"


class Ads:
    """The control plane in a child process, driven by JSON lines."""

    def __init__(self, port: int = 0) -> None:
        python = os.environ.get("PEERLB_PYTHON") or sys.executable
        self.proc = subprocess.Popen(
            [python, str(SERVER), "--port", str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("port "), f"ads_server.py did not start (grpcio, xds-protos?): {line!r}"
        self.port = int(line.split()[1])

    def command(self, **command: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def set(self, version: str, clusters: Dict[str, List[Dict[str, Any]]]) -> str:
        return str(self.command(op="set", version=version, clusters=clusters)["nonce"])

    def requests(self) -> List[Dict[str, Any]]:
        return list(self.command(op="requests"))

    def quit(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.001)
    return time.monotonic() - start


def peers(lst: peerlb.PeerList) -> List[Tuple[str, int, Optional[str], int]]:
    return sorted(
        (p["id"], p["weight"], p.get("zone"), p.get("priority", 0))
        for p in lst.introspect()["peers"]
    )


def test_follows_clusters_nacks_and_resyncs() -> None:
    ads = Ads()
    port = ads.port
    try:
        ads.set("v1", {
            "a": [{"addr": "10.0.0.1", "port": 80, "weight": 3, "health": "HEALTHY",
                   "region": "r1", "zone": "z1"},
                  {"addr": "10.0.0.2", "port": 80, "health": "UNHEALTHY"}],
            "b": [{"addr": "10.0.0.3", "port": 81, "priority": 1, "locality_weight": 4,
                   "region": "r2"}],
        })
        lst = peerlb.PeerList()
        lst.start()
        b = peerlb.XdsUpdater(f"127.0.0.1:{port}", ["a", "b"], node_id="py-node",
                              node_cluster="py-cluster", backoff_initial=0.05,
                              backoff_max=0.2).bind(lst)
        with b:
            v1 = [("10.0.0.1:80", 3, "r1/z1", 0), ("10.0.0.3:81", 4, "r2", 1)]
            wait_for("v1", lambda: peers(lst) == v1)
            first = ads.requests()[0]
            assert (first["node_id"], first["node_cluster"]) == ("py-node", "py-cluster")
            assert sorted(first["names"]) == ["a", "b"]

            start = time.monotonic()
            # b stays as it is unless named: an empty b empties it.
            ads.set("v2", {"a": [{"addr": "10.0.0.1", "port": 80, "health": "DRAINING"},
                                 {"addr": "10.0.0.4", "port": 80}], "b": []})
            wait_for("v2", lambda: peers(lst) == [("10.0.0.4:80", 1, None, 0)])
            delay = time.monotonic() - start
            print(f"python: xds change reached the list in {delay * 1000:.1f} ms")
            assert delay < 0.5
            wait_for("the ACK of v2", lambda: any(r["version"] == "v2" for r in ads.requests()))

            nonce = ads.set("v3", {"a": [{"addr": "10.0.0.5", "port": 70000}]})
            wait_for("the NACK", lambda: any(
                r["nonce"] == nonce and r["error"] for r in ads.requests()))
            nack = next(r for r in ads.requests() if r["nonce"] == nonce)
            assert nack["version"] == "v2"
            assert "70000" in nack["error"]
            wait_for("the rejection reported",
                     lambda: isinstance(b.last_error, peerlb.SourceFailed))
            assert peers(lst) == [("10.0.0.4:80", 1, None, 0)], "the last good set stays"

            ads.quit()
            time.sleep(0.3)
            assert isinstance(b.last_error, peerlb.SourceFailed)
            assert peers(lst) == [("10.0.0.4:80", 1, None, 0)], "kept while the server is away"

            ads = Ads(port)
            ads.set("r1", {"a": [{"addr": "10.0.1.1", "port": 80}]})
            resync = wait_for("the resync", lambda: peers(lst) == [("10.0.1.1:80", 1, None, 0)])
            print(f"python: xds resync {resync * 1000:.1f} ms after the restarted server got its state")
            assert b.last_error is None
            assert ads.requests()[0]["version"] == "v2"
        lst.stop()
    finally:
        ads.quit()


@pytest.mark.parametrize("args,kwargs", [
    (("127.0.0.1:1", []), {}),
    (("127.0.0.1:1", [""]), {}),
    (("https://127.0.0.1:1", ["a"]), {}),
    (("", ["a"]), {}),
    (("127.0.0.1:1", ["a"]), {"node_id": ""}),
    (("127.0.0.1:1", ["a"]), {"node_cluster": ""}),
])
def test_bad_configuration_is_invalid_argument(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.XdsUpdater(*args, **kwargs)


def test_bad_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        peerlb.XdsUpdater("127.0.0.1:1", "a")
    with pytest.raises(TypeError):
        peerlb.XdsUpdater("127.0.0.1:1", [1])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        peerlb.XdsUpdater(1, ["a"])  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError, peerlb.InvalidArgument)):
        peerlb.XdsUpdater("127.0.0.1:1", ["a"], backoff_initial=-1)
