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
