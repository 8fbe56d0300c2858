"""Updaters from Python: static, file (edits, bad lines) and DNS against a real UDP DNS
server on 127.0.0.1 (a few lines of Python below)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

import peerlb


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.005)
    return time.monotonic() - start


def ids(lst: peerlb.PeerList) -> List[str]:
    return sorted(p["id"] for p in lst.introspect()["peers"])


def test_static_updater_with_weights_and_context_manager() -> None:
    lst = peerlb.PeerList("weighted-round-robin", shuffle=False)
    binding = peerlb.StaticUpdater([("a:1", 3), "b:1"]).bind(lst)
    assert not binding.running and len(lst) == 0
    with binding as b:
        assert b.running
        assert ids(lst) == ["a:1", "b:1"]
        assert b.peers() == [("a:1", 3), ("b:1", 1)]
        with pytest.raises(peerlb.AlreadyStarted):
            b.start()
    assert not binding.running
    with pytest.raises(peerlb.NotStarted):
        binding.stop()
    assert len(lst) == 2  # stop leaves the peers


def test_bad_arguments() -> None:
    lst = peerlb.PeerList()
    with pytest.raises(TypeError):
        peerlb.StaticUpdater(5)  # type: ignore[arg-type]
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.StaticUpdater([""]).bind(lst).start()
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.DnsUpdater("x.test", "a")  # a port is needed
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.DnsUpdater("x.test", "mx")  # type: ignore[arg-type]
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.DnsUpdater("x.test", nameserver="nope")
    with pytest.raises(TypeError):
        peerlb.StaticUpdater(["a:1"]).bind("not a list")  # type: ignore[arg-type]


def test_file_updater_follows_and_keeps_last_good(tmp_path: Path) -> None:
    path = tmp_path / "peers.txt"
    path.write_text("# backends\na:1 2\nb:1\n")
    lst = peerlb.PeerList()
    with peerlb.FileUpdater(path, poll_interval=0.02).bind(lst) as b:
        assert ids(lst) == ["a:1", "b:1"]
        path.write_text("c:1\n")
        wait_for("edit", lambda: ids(lst) == ["c:1"])
        path.write_text("c:1\nbad line here\n")
        wait_for("error", lambda: b.last_error is not None)
        err = b.last_error
        assert isinstance(err, peerlb.SourceFailed)
        assert "peers.txt:2" in str(err)
        assert ids(lst) == ["c:1"]
        path.unlink()
        wait_for("missing", lambda: "cannot read" in str(b.last_error))
        assert ids(lst) == ["c:1"]
        assert b.stats()["failures"] >= 2


# --- a real DNS server ---------------------------------------------------------------


class DnsServer:
    """Answers A and SRV questions from `self.a` / `self.srv`, or with `self.rcode`."""

    def __init__(self) -> None:
        self.a: List[str] = []
        self.srv: List[Tuple[int, int, int, str]] = []
        self.rcode = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.02)
        self.addr = "%s:%d" % self.sock.getsockname()
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def encode_name(name: str) -> bytes:
        out = b""
        for label in name.strip(".").split("."):
            out += bytes([len(label)]) + label.encode()
        return out + b"\0"

    def answer(self, query: bytes) -> bytes:
        (qid, flags) = struct.unpack("!HH", query[:4])
        end = 12
        while query[end] != 0:
            end += query[end] + 1
        question = query[12 : end + 5]
        qtype = struct.unpack("!H", query[end + 1 : end + 3])[0]
        records: List[Tuple[int, bytes]] = []
        if self.rcode == 0:
            if qtype == 1:
                records = [(1, socket.inet_aton(ip)) for ip in self.a]
            elif qtype == 33:
                records = [
                    (33, struct.pack("!HHH", p, w, port) + self.encode_name(t))
                    for (p, w, port, t) in self.srv
                ]
        header = struct.pack(
            "!HHHHHH", qid, 0x8400 | (flags & 0x0100) | self.rcode, 1, len(records), 0, 0
        )
        body = b"".join(
            struct.pack("!HHHIH", 0xC00C, t, 1, 0, len(data)) + data for (t, data) in records
        )
        return header + question + body

    def serve(self) -> None:
        while not self.stopping:
            try:
                query, peer = self.sock.recvfrom(1500)
            except OSError:
                continue
            self.sock.sendto(self.answer(query), peer)

    def close(self) -> None:
        self.stopping = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def dns() -> "DnsServerIter":
    server = DnsServer()
    yield server  # type: ignore[misc]
    server.close()


DnsServerIter = DnsServer


def test_dns_a_records_follow_and_servfail_keeps_last_good(dns: DnsServer) -> None:
    dns.a = ["10.0.0.1", "10.0.0.2"]
    lst = peerlb.PeerList()
    up = peerlb.DnsUpdater(
        "backends.test", "a", port=80, nameserver=dns.addr, min_interval=0.03, timeout=0.3
    )
    with up.bind(lst) as b:
        wait_for("first", lambda: ids(lst) == ["10.0.0.1:80", "10.0.0.2:80"])
        dns.a = ["10.0.0.3"]
        took = wait_for("change", lambda: ids(lst) == ["10.0.0.3:80"])
        print(f"python: dns change reached the list in {took * 1000:.0f} ms")
        dns.rcode = 2  # SERVFAIL
        wait_for("servfail", lambda: isinstance(b.last_error, peerlb.SourceFailed))
        assert ids(lst) == ["10.0.0.3:80"]


def test_dns_srv_weights_reach_weighted_round_robin(dns: DnsServer) -> None:
    dns.srv = [(10, 3, 9001, "one.test"), (10, 1, 9002, "two.test"), (20, 50, 1, "x.test")]
    lst = peerlb.PeerList("weighted-round-robin", shuffle=False)
    with lst, peerlb.DnsUpdater("_h._tcp.test", nameserver=dns.addr, min_interval=0.05).bind(lst):
        wait_for("srv", lambda: len(lst) == 2)
        counts: Dict[str, int] = {}
        for _ in range(400):
            with lst.choose(timeout=1) as c:
                counts[c.peer] = counts.get(c.peer, 0) + 1
        assert counts == {"one.test:9001": 300, "two.test:9002": 100}


def test_last_error_none_when_fine(tmp_path: Path) -> None:
    path = tmp_path / "p"
    path.write_text("a:1\n")
    b: Optional[peerlb.Binding] = peerlb.FileUpdater(str(path)).bind(peerlb.PeerList())
    assert b is not None
    b.start()
    assert b.last_error is None and "file:" in b.source and "running" in repr(b)
    b.stop()


def test_etcd_updater_rejects_bad_arguments_in_every_build() -> None:
    # With the `etcd` feature: empty prefix is invalid; without it: not available. Both
    # are InvalidArgument (tests_etcd/ runs the real etcd tests on an etcd build).
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.EtcdUpdater(["http://127.0.0.1:2379"], "")


def test_xds_updater_rejects_bad_arguments_in_every_build() -> None:
    # With the `xds` feature: bad configuration is invalid; without it: not available,
    # saying so. Both are InvalidArgument (tests_xds/ runs the real control plane tests).
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.XdsUpdater("127.0.0.1:1", [])
    try:
        peerlb.XdsUpdater("127.0.0.1:1", ["a"], node_id="n")
    except peerlb.InvalidArgument as e:
        assert "without xDS support" in str(e)


# --- files that are not regular files -----------------------------------------------

# Run in a child process: with a file updater stuck on a FIFO, a library thread may stay
# blocked until the FIFO gets a writer, which would stall the rest of this test session;
# and /dev/zero read without a size cap would eat the machine's memory (the child has a
# 4 GiB address-space limit, so such a regression dies instead).
SPECIAL_FILE_CHILD = r"""
import asyncio, json, os, resource, sys, threading, time
import peerlb

resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
mode, path = sys.argv[1], sys.argv[2]
report = {}

def source_failed(binding, within):
    end = time.monotonic() + within
    while time.monotonic() < end:
        if isinstance(binding.last_error, peerlb.SourceFailed):
            return True
        time.sleep(0.01)
    return False

def start(binding):
    # start() may raise SourceFailed or record it; either way it must return.
    done = threading.Event()
    def run():
        try:
            binding.start()
        except peerlb.PeerlbError:
            pass
        done.set()
    threading.Thread(target=run, daemon=True).start()
    return done.wait(10)

bindings = []
if mode == "after-start":
    # Two bindings on regular files that then become FIFOs: each poll would block a
    # library thread (there are two) on open().
    for i in range(2):
        p = f"{path}.{i}"
        with open(p, "w") as f:
            f.write("a:1\n")
        b = peerlb.FileUpdater(p, poll_interval=0.02).bind(peerlb.PeerList())
        b.start()
        bindings.append(b)
        os.unlink(p)
        os.mkfifo(p)
    time.sleep(0.3)  # several polls
    report["start_returned"] = True
else:
    b = peerlb.FileUpdater(path, poll_interval=0.02).bind(peerlb.PeerList())
    bindings.append(b)
    report["start_returned"] = start(b)
report["source_failed"] = all(source_failed(b, 10) for b in bindings)

# An unrelated list's deadlines must not depend on a free library thread.
other = peerlb.PeerList()
other.start()
t0 = time.monotonic()
try:
    other.choose(timeout=0.2)
except peerlb.ChooseTimeout:
    pass
report["choose_took"] = time.monotonic() - t0

async def wait_async():
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(other.choose_async(timeout=0.2), 20)
    except peerlb.ChooseTimeout:
        return time.monotonic() - t0
    except asyncio.TimeoutError:
        return -2.0  # never settled
    return -1.0
report["choose_async_took"] = asyncio.run(wait_async())
# This process's peak resident memory (VmHWM; ru_maxrss would include the parent's
# before exec).
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
report["max_rss_mib"] = int(hwm.split()[1]) / 1024
print(json.dumps(report), flush=True)
os._exit(0)  # threads may still be blocked on a FIFO
"""


def special_file(mode: str, path: str) -> Dict[str, object]:
    import json
    import subprocess
    import sys

    try:
        r = subprocess.run(
            [sys.executable, "-c", SPECIAL_FILE_CHILD, mode, path],
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{mode} {path}: the child hung")
    assert r.returncode == 0, f"child died ({r.returncode}): {r.stderr[-2000:]}"
    report: Dict[str, object] = json.loads(r.stdout.strip().splitlines()[-1])
    return report


def check_special_file(report: Dict[str, object]) -> None:
    assert report["start_returned"], "start() did not return within 10 s"
    assert report["source_failed"], "last_error never became SourceFailed"
    # Deadlines of seconds: the choose must end at its 0.2 s, not when a worker frees up.
    assert 0.15 <= float(report["choose_took"]) < 3.0, report  # type: ignore[arg-type]
    assert 0.15 <= float(report["choose_async_took"]) < 3.0, report  # type: ignore[arg-type]
    # A file is read up to a size cap (16 MiB by default), not until memory runs out.
    assert float(report["max_rss_mib"]) < 1024, report  # type: ignore[arg-type]


def test_file_updater_on_a_fifo(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "peers.fifo"
    os.mkfifo(fifo)
    check_special_file(special_file("at-start", str(fifo)))


def test_file_updater_on_dev_zero() -> None:
    check_special_file(special_file("at-start", "/dev/zero"))


def test_file_updater_whose_file_becomes_a_fifo(tmp_path: Path) -> None:
    check_special_file(special_file("after-start", str(tmp_path / "peers")))


def test_file_updater_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "peers"
    path.write_text("10.0.0.1:80\n10.0.0.2:80\n")
    lst = peerlb.PeerList()
    with lst, peerlb.FileUpdater(path, poll_interval=0.02, max_size=64).bind(lst) as b:
        assert sorted(ids(lst)) == ["10.0.0.1:80", "10.0.0.2:80"]
        tmp = tmp_path / "peers.new"
        tmp.write_text("".join(f"10.0.1.{i}:80\n" for i in range(20)))  # over 64 bytes
        tmp.rename(path)
        wait_for("the cap to be reported", lambda: b.last_error is not None)
        err = b.last_error
        assert isinstance(err, peerlb.SourceFailed)
        assert "64" in str(err)
        assert sorted(ids(lst)) == ["10.0.0.1:80", "10.0.0.2:80"], "the last good set stays"
    with pytest.raises(ValueError):
        peerlb.FileUpdater(path, max_size=-1)
