"""The WebSocket balancer against real processes and sockets: the `wsbalancer` binary,
backends written on the `websockets` library (backend.py, one process each, so that one
can be killed), and `websockets` clients.

Every wait is for a condition (messages received, a log line) with a deadline of seconds;
nothing depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
BIN = Path(os.environ.get("WSBALANCER_BIN", ROOT / "target" / "debug"))
DEADLINE = 30.0


class Proc:
    """A child process whose first stdout line says where it listens."""

    def __init__(self, argv: List[str], stderr: Path) -> None:
        self.stderr_path = stderr
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=open(stderr, "w"), text=True
        )
        assert self.proc.stdout is not None
        self.line = self.proc.stdout.readline().strip()
        assert self.line, f"{argv[0]} printed nothing: {stderr.read_text()}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Backend:
    def __init__(self, tmp: Path, name: str, decline: Optional[int] = None) -> None:
        self.name = name
        self.log = tmp / f"{name}.log"
        argv = [sys.executable, str(HERE / "backend.py"), "--name", name, "--log", str(self.log)]
        if decline is not None:
            argv += ["--decline", str(decline)]
        self.proc = Proc(argv, tmp / f"{name}.err")
        self.addr = self.proc.line.split()[1]

    def lines(self) -> List[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


class Balancer:
    def __init__(self, tmp: Path, backends: List[Backend], *extra: str) -> None:
        argv = [str(BIN / "wsbalancer")]
        for b in backends:
            argv += ["--backend", b.addr]
        argv += list(extra)
        self.proc = Proc(argv, tmp / "wsbalancer.err")
        words = self.proc.line.split()
        self.url = words[3]
        self.admin = words[5]

    def call(self, method: str, path: str, body: Optional[bytes] = None) -> Tuple[int, Any]:
        request = urllib.request.Request(self.admin + path, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            assert e.headers["Content-Type"] == "application/json"
            return e.code, json.loads(e.read())

    def log(self) -> str:
        return self.proc.stderr_path.read_text()


@pytest.fixture
def procs() -> Any:
    started: List[Proc] = []
    yield started
    for p in started:
        p.stop()


def backends(tmp: Path, procs: List[Proc], *names: str, decline: Optional[int] = None) -> List[Backend]:
    made = [Backend(tmp, n, decline) for n in names]
    procs.extend(b.proc for b in made)
    return made


def balancer(tmp: Path, procs: List[Proc], bs: List[Backend], *extra: str) -> Balancer:
    lb = Balancer(tmp, bs, *extra)
    procs.append(lb.proc)
    return lb


async def until(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        await asyncio.sleep(0.01)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    asyncio.run(until(condition, what))


class Client:
    """One WebSocket client: sends `{"client": id, "n": n}` messages and keeps the echoes."""

    def __init__(self, url: str, cid: int) -> None:
        self.url = url
        self.cid = cid
        self.sent = 0
        self.echoes: List[Dict[str, Any]] = []
        self.ws: Any = None
        self.reader: Optional[asyncio.Task[None]] = None
        self.closed: Optional[ConnectionClosed] = None

    async def open(self) -> "Client":
        self.ws = await websockets.connect(self.url + "/chat")
        self.reader = asyncio.ensure_future(self.read())
        return self

    async def read(self) -> None:
        try:
            async for frame in self.ws:
                self.echoes.append(json.loads(frame))
        except ConnectionClosed as e:
            self.closed = e

    async def send(self, count: int = 1, **extra: Any) -> None:
        for _ in range(count):
            await self.ws.send(json.dumps({"client": self.cid, "n": self.sent, **extra}))
            self.sent += 1

    async def settle(self) -> None:
        await until(lambda: len(self.echoes) >= self.sent or self.closed is not None,
                    f"client {self.cid}'s echoes")

    def backend(self) -> str:
        return str(self.echoes[-1]["backend"])

    def check_once_in_order(self) -> None:
        assert self.closed is None, f"client {self.cid} was disconnected: {self.closed!r}"
        assert [e["n"] for e in self.echoes] == list(range(self.sent)), (
            f"client {self.cid}: {[e['n'] for e in self.echoes]}"
        )
        assert all(e["client"] == self.cid for e in self.echoes)

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await self.reader


def test_killing_a_backend_mid_stream_loses_and_repeats_nothing(tmp_path: Path, procs: List[Proc]) -> None:
    b1, b2, b3 = backends(tmp_path, procs, "b1", "b2", "b3")
    lb = balancer(tmp_path, procs, [b1, b2, b3])
    by_addr = {b.addr: b for b in (b1, b2, b3)}

    async def main() -> Backend:
        clients = [await Client(lb.url, i).open() for i in range(6)]
        stop = asyncio.Event()

        async def stream(c: Client) -> None:
            while not stop.is_set():
                await c.send()
                await asyncio.sleep(0.005)

        streams = [asyncio.ensure_future(stream(c)) for c in clients]
        await until(lambda: all(len(c.echoes) >= 30 for c in clients), "30 echoes each")
        victim = by_addr[lb.call("GET", "/session/list")[1][0]["backendId"]]
        on_victim = [c for c in clients if c.backend() == victim.name]
        assert on_victim
        victim.proc.kill()
        killed_at = {c.cid: len(c.echoes) for c in on_victim}
        # Each client on the killed backend hears from another backend, without a gap.
        await until(
            lambda: all(
                len(c.echoes) > killed_at[c.cid] + 20 and c.backend() != victim.name
                for c in on_victim
            ),
            "echoes from the new backends",
        )
        stop.set()
        for s in streams:
            await s
        for c in clients:
            await c.settle()
            c.check_once_in_order()
        sessions = lb.call("GET", "/session/list")[1]
        assert sum(s["reconnects"] for s in sessions) >= len(on_victim)
        assert all(s["backendId"] != victim.addr for s in sessions)
        for c in clients:
            await c.close()
        return victim

    victim = asyncio.run(main())
    # The killed backend failed its sessions' attempts: failures were counted.
    assert lb.call("GET", f"/backend/config/{victim.addr}")[1]["failures"] >= 1
    assert "terminated" in lb.log() and "failing over" in lb.log()


def test_disable_keeps_sessions_and_new_ones_avoid_the_backend(tmp_path: Path, procs: List[Proc]) -> None:
    b1, b2 = backends(tmp_path, procs, "b1", "b2")
    lb = balancer(tmp_path, procs, [b1, b2])

    async def main() -> None:
        first = [await Client(lb.url, i).open() for i in range(2)]
        for c in first:
            await c.send(3)
            await c.settle()
        names = sorted(c.backend() for c in first)
        assert names == ["b1", "b2"], names  # fewest connections
        on_b1 = next(c for c in first if c.backend() == "b1")
        status, answer = lb.call("POST", f"/backend/disable/{b1.addr}")
        assert (status, answer) == (200, {"result": "success", "code": 1})
        status, again = lb.call("POST", f"/backend/disable/{b1.addr}")
        assert again == {"result": "success", "code": 3, "reason": "NoActionRequired"}
        await on_b1.send(10)
        await on_b1.settle()
        assert {e["backend"] for e in on_b1.echoes} == {"b1"}  # the session stays
        later = [await Client(lb.url, 10 + i).open() for i in range(4)]
        for c in later:
            await c.send(2)
            await c.settle()
            assert c.backend() == "b2"
        config = json.loads(json.dumps(lb.call("GET", f"/backend/config/{b1.addr}")[1]))
        assert config["admin"] == "disabled" and config["sessions"] == 1
        for c in first + later:
            c.check_once_in_order()
            await c.close()

    asyncio.run(main())


@pytest.mark.parametrize("action", ["failover", "delete"])
def test_failover_and_delete_move_the_backends_sessions(
    tmp_path: Path, procs: List[Proc], action: str
) -> None:
    b1, b2 = backends(tmp_path, procs, "b1", "b2")
    lb = balancer(tmp_path, procs, [b1, b2])

    async def main() -> None:
        clients = [await Client(lb.url, i).open() for i in range(4)]
        for c in clients:
            await c.send(5)
            await c.settle()
        moving = [c for c in clients if c.backend() == "b1"]
        assert len(moving) == 2
        status, answer = lb.call("POST", f"/backend/{action}/{b1.addr}")
        assert status == 200 and answer["code"] == 1, answer

        async def keep_sending(c: Client) -> None:
            while c.backend() != "b2":
                await c.send()
                await asyncio.sleep(0.01)
                await c.settle()

        await asyncio.wait_for(asyncio.gather(*(keep_sending(c) for c in moving)), DEADLINE)
        for c in clients:
            await c.send(5)
            await c.settle()
            c.check_once_in_order()
            assert c.backend() == "b2"
        # The old backend was closed politely (1001), not abruptly.
        await until(lambda: b1.lines().count("closed 1001") == 2, "b1's polite closes")
        for c in clients:
            await c.close()

    asyncio.run(main())
    ids = [b["id"] for b in lb.call("GET", "/backend/list")[1]]
    assert ids == ([b2.addr] if action == "delete" else [b1.addr, b2.addr])
    if action == "failover":
        # A move an admin asked for is no failure of the backend.
        assert lb.call("GET", f"/backend/config/{b1.addr}")[1]["failures"] == 0


@pytest.mark.parametrize("status", [401, 403])
def test_a_declined_handshake_closes_the_client_with_the_policy_code(
    tmp_path: Path, procs: List[Proc], status: int
) -> None:
    (b1,) = backends(tmp_path, procs, "b1", decline=status)
    lb = balancer(tmp_path, procs, [b1])

    async def main() -> None:
        async with websockets.connect(lb.url + "/private") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), DEADLINE)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    asyncio.run(main())
    assert f"backend answered HTTP {status}" in lb.log()
    config = lb.call("GET", f"/backend/config/{b1.addr}")[1]
    # Declined: neither a failure nor a success for the backend.
    assert config["failures"] == 0 and config["sessions"] == 0 and config["pending"] == 0


def test_bad_admin_input_gets_a_4xx_json_error_and_changes_nothing(
    tmp_path: Path, procs: List[Proc]
) -> None:
    b1, b2 = backends(tmp_path, procs, "b1", "b2")
    lb = balancer(tmp_path, procs, [b1, b2])

    def state() -> List[Tuple[str, str, int]]:
        return [(b["id"], b["admin"], b["weight"]) for b in lb.call("GET", "/backend/list")[1]]

    before = state()
    cases = [
        ("POST", "/backend/disable/127.0.0.1:1", None, 404, "peer-not-in-list"),
        ("POST", "/backend/failover/nope", None, 404, "peer-not-in-list"),
        ("GET", "/backend/config/nope", None, 404, "peer-not-in-list"),
        ("POST", "/backend/add", b'{"id": ', 400, "invalid-argument"),
        ("POST", "/backend/add", b"[1]", 400, "invalid-argument"),
        ("POST", "/backend/add", b'{"weight": 2}', 400, "invalid-argument"),
        ("POST", "/backend/add", b'{"id": "x:1", "weight": 0}', 400, "invalid-argument"),
        ("POST", "/backend/add", b"\xff", 400, "invalid-argument"),
        ("POST", "/backend/add", json.dumps({"id": b1.addr}).encode(), 409, "peer-already-in-list"),
        ("GET", f"/backend/disable/{b1.addr}", None, 405, "method-not-allowed"),
        ("GET", "/backend/add", None, 405, "method-not-allowed"),
        ("POST", "/backend/list", b"", 405, "method-not-allowed"),
        ("POST", f"/backend/explode/{b1.addr}", None, 404, "not-found"),
        ("GET", "/nothing/here", None, 404, "not-found"),
    ]
    for method, path, body, want_status, want_error in cases:
        status, answer = lb.call(method, path, body)
        assert status == want_status, (method, path, status, answer)
        assert answer["result"] == "failed" and answer["code"] == 4, answer
        assert answer["error"] == want_error and answer["reason"], answer
    assert state() == before
    status, added = lb.call("POST", "/backend/add", b'{"id": "127.0.0.1:9", "weight": 3, "url": "x"}')
    assert status == 200 and added == {"result": "success", "code": 1, "id": "127.0.0.1:9", "ignored": ["url"]}
    assert state() == before + [("127.0.0.1:9", "enabled", 3)]


def test_normal_closure_from_either_side_closes_both(tmp_path: Path, procs: List[Proc]) -> None:
    (b1,) = backends(tmp_path, procs, "b1")
    lb = balancer(tmp_path, procs, [b1])

    async def main() -> None:
        c = await Client(lb.url, 1).open()
        await c.send(2)
        await c.settle()
        await c.close()
        await until(lambda: "closed 1000" in b1.lines(), "the backend's normal close")
        d = await Client(lb.url, 2).open()
        await d.ws.send(json.dumps({"cmd": "close"}))
        await asyncio.wait_for(d.reader, DEADLINE)  # the iteration ends at a normal close
        assert d.closed is None and d.ws.close_code == 1000 and d.ws.close_reason == "asked to close"

    asyncio.run(main())
    wait_for(lambda: lb.log().count("terminated") == 2, "two terminated sessions in the log")
    assert "session 1 created" in lb.log() and "session 2 terminated" in lb.log()
    assert lb.call("GET", "/session/list")[1] == []


def test_valves_limit_sizes_and_stamp_messages(tmp_path: Path, procs: List[Proc]) -> None:
    (b1,) = backends(tmp_path, procs, "b1")
    lb = balancer(tmp_path, procs, [b1], "--max-message-bytes", "100", "--stamp", "via=wsbalancer")

    async def main() -> None:
        c = await Client(lb.url, 1).open()
        await c.ws.send(json.dumps({"client": 1, "n": -1, "pad": "x" * 200}))  # dropped
        await c.send(3)
        await c.settle()
        assert [e["n"] for e in c.echoes] == [0, 1, 2]
        assert all(e["via"] == "wsbalancer" for e in c.echoes)
        # The backend never saw the dropped message: sequence numbers 1..3 only.
        assert [line for line in b1.lines() if line.startswith("seq")] == ["seq 1", "seq 2", "seq 3"]
        await c.close()

    asyncio.run(main())
    assert "dropped a" in lb.log()
