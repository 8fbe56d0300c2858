"""The tcp-probe transport (by spec string) against real listening sockets on 127.0.0.1."""

import socket
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
