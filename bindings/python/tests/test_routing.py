"""Zones and priorities from Python: what the binding accepts, what it refuses (with a
code, leaving the list as it was), and what introspection reports. The routing itself is
the core's and is replayed by the conformance scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import peerlb


def test_zone_and_priority_reach_the_list_and_introspection() -> None:
    lst = peerlb.PeerList(shuffle=False, local_zone="a")
    lst.update(
        add=[
            {"id": "a:1", "zone": "a"},
            {"id": "b:1", "zone": "b", "priority": 1, "weight": 2},
            {"id": "c:1", "zone": None},
            "d:1",
        ]
    )
    lst.start()
    peers = {p["id"]: p for p in lst.introspect()["peers"]}
    assert (peers["a:1"]["zone"], peers["a:1"]["priority"]) == ("a", 0)
    assert (peers["b:1"]["zone"], peers["b:1"]["priority"], peers["b:1"]["weight"]) == ("b", 1, 2)
    assert peers["c:1"]["zone"] is None and peers["d:1"]["zone"] is None
    levels = lst.introspect()["priorities"]
    assert [(lv["priority"], lv["load"], lv["healthy"]) for lv in levels] == [(0, 100, 3), (1, 0, 1)]
    assert all(lst.choose().peer != "b:1" for _ in range(9))


@pytest.mark.parametrize(
    "peer, error",
    [
        ({"id": "x:1", "zone": 3}, TypeError),
        ({"id": "x:1", "zone": b"a"}, TypeError),
        ({"id": "x:1", "priority": "1"}, TypeError),
        ({"id": "x:1", "priority": -1}, peerlb.InvalidArgument),
        ({"id": "x:1", "region": "a"}, TypeError),
    ],
)
def test_bad_zone_or_priority_types_change_nothing(peer: Any, error: type) -> None:
    lst = peerlb.PeerList()
    lst.update(add=["a:1"])
    with pytest.raises(error):
        lst.update(add=["y:1", peer])
    assert [p["id"] for p in lst.introspect()["peers"]] == ["a:1"]


def test_zones_the_core_refuses_are_invalid_argument_for_that_peer_only() -> None:
    lst = peerlb.PeerList(shuffle=False)
    with pytest.raises(peerlb.InvalidArgument) as e:
        lst.update(add=[{"id": "a:1", "zone": "z" * 1025}, {"id": "b:1", "zone": "a\0b"}, "c:1"])
    assert e.value.code == "invalid-argument"
    assert [p["id"] for p in lst.introspect()["peers"]] == ["c:1"]


def test_routing_options_are_checked() -> None:
    with pytest.raises(TypeError):
        peerlb.PeerList(local_zone=1)
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.PeerList(local_zone="a\0")
    for factor in (0.5, float("nan"), float("inf"), 101):
        with pytest.raises(peerlb.InvalidArgument):
            peerlb.PeerList(overprovisioning_factor=factor)
    with pytest.raises(TypeError):
        peerlb.PeerList(overprovisioning_factor="1.4")
    with pytest.raises(TypeError):
        peerlb.PeerList(min_cluster_size=1.5)
    peerlb.PeerList(local_zone="", min_cluster_size=0, overprovisioning_factor=1)


def test_the_file_updater_reads_zone_and_priority(tmp_path: Path) -> None:
    path = tmp_path / "peers"
    path.write_text("a:1 zone=z1\nb:1 2 priority=1\n")
    lst = peerlb.PeerList(shuffle=False)
    binding = peerlb.FileUpdater(str(path)).bind(lst)
    binding.start()
    try:
        got = [(p["id"], p["weight"], p["zone"], p["priority"]) for p in lst.introspect()["peers"]]
        assert got == [("a:1", 1, "z1", 0), ("b:1", 2, None, 1)]
    finally:
        binding.stop()


def test_deterministic_subset() -> None:
    backends = [f"10.0.0.{i}:80" for i in range(300)]
    per_backend = dict.fromkeys(backends, 0)
    for client in range(1000):
        mine = peerlb.deterministic_subset(backends, client, 30)
        assert len(set(mine)) == 30
        for b in mine:
            per_backend[b] += 1
    assert set(per_backend.values()) == {100}
    assert peerlb.deterministic_subset(reversed(backends), 5, 30) == peerlb.deterministic_subset(backends, 5, 30)
    assert sorted(peerlb.deterministic_subset(["b", "a"], 0, 0)) == ["a", "b"]
    with pytest.raises(TypeError):
        peerlb.deterministic_subset([1], 0, 1)  # type: ignore[list-item]
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.deterministic_subset(backends, -1, 1)
    with pytest.raises(TypeError):
        peerlb.deterministic_subset("ab", 0, 1.5)  # type: ignore[arg-type]
