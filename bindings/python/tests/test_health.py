"""The tcp-probe transport (by spec string) against real listening sockets on 127.0.0.1."""
from __future__ import annotations

import socket
import threading
import time

import pytest

import peerlb


def listen(port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    return s


def status(lst: peerlb.PeerList, peer: str) -> str:
    for p in lst.introspect()["peers"]:
        if p["id"] == peer:
            return str(p["status"])
    raise AssertionError(f"{peer} not in list")


def wait_status(lst: peerlb.PeerList, peer: str, want: str) -> float:
    t0 = time.monotonic()
    while status(lst, peer) != want:
        assert time.monotonic() - t0 < 5, f"{peer} never became {want} ({status(lst, peer)})"
        time.sleep(0.005)
    return time.monotonic() - t0


def test_tcp_probe_follows_a_real_socket() -> None:
    srv = listen()
    port = srv.getsockname()[1]
    peer = f"127.0.0.1:{port}"
    lst = peerlb.PeerList(transport="tcp-probe?interval_ms=50&timeout_ms=50")
    assert lst.introspect()["transport"] == "tcp-probe"
    lst.update(add=[peer])
    with lst:
        wait_status(lst, peer, "available")
        with lst.choose(timeout=1) as c:
            assert c.peer == peer
        srv.close()
        wait_status(lst, peer, "unavailable")
        with pytest.raises(peerlb.ChooseTimeout):
            lst.choose(timeout=0.02)
        srv = listen(port)
        wait_status(lst, peer, "available")
    srv.close()


@pytest.mark.parametrize(
    "spec",
    ["udp-probe", "tcp-probe?interval_ms=0", "tcp-probe?x=1", "tcp-probe?", "", "always-available?a=b"],
)
def test_bad_transport_specs(spec: str) -> None:
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.PeerList(transport=spec)


def test_always_available_by_spec() -> None:
    lst = peerlb.PeerList(transport="always-available")
    assert lst.introspect()["transport"] == "always-available"


def test_upstream_numbers_step_by_step() -> None:
    down = {"two"}
    calls: list[str] = []

    def check(backend: str) -> object:
        calls.append(backend)
        if backend in down:
            raise ConnectionError(f"{backend} is down")  # an exception = failed check
        return None

    u = peerlb.Upstream(["one", "two", "three"], check=check, manual=True)
    assert [u.pick() for _ in range(4)] == ["one", "two", "three", "one"]
    seen = []
    for _ in range(5):
        u.check_now()
        seen.append((u.score("one"), u.score("two")))
    assert seen == [(2, 0), (3, -1), (3, -2), (3, -3), (3, -3)]
    assert sorted(calls) == sorted(["one", "two", "three"] * 5)
    assert [u.pick() for _ in range(3)] == ["three", "one", "three"]
    for want in (-2, -1, 0):
        u.up("two")
        assert u.score("two") == want
    assert [u.pick() for _ in range(2)] == ["one", "two"]
    u.reconcile(["two", "four"])
    assert u.scores() == {"two": 0, "four": 1}
    assert u.backends == ["two", "four"]
    u.down("two")
    for _ in range(2):
        u.down("four")
    with pytest.raises(peerlb.NoPeerAvailable):
        u.pick()
    assert u.score("nobody") is None
    u.shutdown()


def test_upstream_check_returning_false_and_slow_checks_fail() -> None:
    release = threading.Event()

    def check(backend: str) -> object:
        if backend == "slow":
            release.wait(60)  # still running when check_now must have returned
        return backend != "false"

    with peerlb.Upstream(["false", "slow", "ok"], check=check, manual=True, timeout=0.05) as u:
        # check_now ends at the checks' timeout, not when the slow check returns.
        rounds = threading.Thread(target=u.check_now)
        rounds.start()
        rounds.join(30)
        try:
            assert not rounds.is_alive(), "check_now waited for the slow check"
            assert u.scores() == {"false": 0, "slow": 0, "ok": 2}
        finally:
            release.set()
            rounds.join()


def test_upstream_check_may_reenter() -> None:
    holder: list[peerlb.Upstream] = []

    def check(backend: str) -> object:
        holder[0].scores()
        holder[0].pick()
        return True

    u = peerlb.Upstream(["a"], check=check, manual=True)
    holder.append(u)
    u.check_now()
    assert u.score("a") == 2


def test_upstream_bad_arguments() -> None:
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.Upstream(["a"], low_score=1)
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.Upstream(["a"], fail_delta=0)
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.Upstream(["a"], timeout=0)
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.Upstream(["a"], check="udp-probe")  # type: ignore[arg-type]
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.Upstream([""])
    with pytest.raises(TypeError):
        peerlb.Upstream("a:1")
    with pytest.raises(TypeError):
        peerlb.Upstream(["a"], check=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.Upstream([1])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        peerlb.Upstream(["a"], high_score=True)
    u = peerlb.Upstream(["a"], manual=True)
    with pytest.raises(TypeError):
        u.reconcile(["a", None])  # type: ignore[list-item]
    assert u.backends == ["a"]


def test_upstream_tcp_probe_real_socket() -> None:
    srv = listen()
    port = srv.getsockname()[1]
    peer = f"127.0.0.1:{port}"
    u = peerlb.Upstream([peer], check="tcp-probe", interval=0.02, timeout=0.05)

    def wait(pred: "object") -> None:
        t0 = time.monotonic()
        while not pred(u.score(peer)):  # type: ignore[operator]
            assert time.monotonic() - t0 < 5, u.scores()
            time.sleep(0.005)

    wait(lambda s: s == 3)
    assert u.pick() == peer
    srv.close()
    wait(lambda s: s < 0)
    with pytest.raises(peerlb.NoPeerAvailable):
        u.pick()
    srv = listen(port)
    wait(lambda s: s >= 0)
    assert u.pick() == peer
    u.shutdown()
    srv.close()


def test_interpreter_exits_cleanly_with_python_checks_running() -> None:
    import subprocess
    import sys

    code = (
        "import peerlb, time\n"
        "u = peerlb.Upstream(['a', 'b'], check=lambda b: time.sleep(0.01), interval=0.005, timeout=0.5)\n"
        "deadline = time.monotonic() + 20\n"
        "while u.scores() != {'a': 3.0, 'b': 3.0} and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print(u.scores())\n"
    )
    for _ in range(5):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "{'a': 3.0, 'b': 3.0}"
