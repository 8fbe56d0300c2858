"""The ``subset=`` / ``subset_client=`` list options: what the list retains, and bad input
(wrong types, out-of-range values, a size without a client) that raises a coded error and
leaves the list as it was."""

from typing import Any, List

import pytest

import peerlb

IDS = [f"10.3.0.{i}:80" for i in range(12)]


def retained(lst: peerlb.PeerList) -> List[str]:
    return sorted(p["id"] for p in lst.introspect()["peers"])


def test_a_list_retains_the_functions_answer() -> None:
    lst = peerlb.PeerList(subset=4, subset_client=7, shuffle=False)
    lst.update(add=IDS)
    assert retained(lst) == sorted(peerlb.deterministic_subset(IDS, 7, 4))
    info = lst.introspect()
    assert info["subset"] == {"size": 4, "client": 7, "offered": 12}
    assert info["total"] == 4
    gone = retained(lst)[0]
    lst.update(remove=[gone])
    rest = [i for i in IDS if i != gone]
    assert retained(lst) == sorted(peerlb.deterministic_subset(rest, 7, 4))
    with lst:
        with lst.choose(timeout=1) as c:
            assert c.peer in retained(lst)


def test_without_subsetting_introspection_says_none() -> None:
    assert peerlb.PeerList().introspect()["subset"] is None
    assert peerlb.PeerList(subset=0, subset_client=3).introspect()["subset"] is None


def test_the_core_refuses_one_option_without_the_other() -> None:
    with pytest.raises(peerlb.InvalidArgument, match="subset_client"):
        peerlb.PeerList(subset=4)
    with pytest.raises(peerlb.InvalidArgument, match="without subset"):
        peerlb.PeerList(subset_client=4)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"subset": "4", "subset_client": 1}, TypeError),
        ({"subset": 4.5, "subset_client": 1}, TypeError),
        ({"subset": True, "subset_client": 1}, TypeError),
        ({"subset": -1, "subset_client": 1}, peerlb.InvalidArgument),
        ({"subset": 2**64, "subset_client": 1}, peerlb.InvalidArgument),
        ({"subset": 4, "subset_client": -1}, peerlb.InvalidArgument),
        ({"subset": 4, "subset_client": 2**64}, peerlb.InvalidArgument),
        ({"subset": 4, "subset_client": "7"}, TypeError),
        ({"subset": 4, "subset_client": [7]}, TypeError),
    ],
)
def test_bad_option_values_raise(kwargs: Any, error: type) -> None:
    with pytest.raises(error):
        peerlb.PeerList(**kwargs)


def test_huge_values_are_fine() -> None:
    lst = peerlb.PeerList(subset=2**64 - 1, subset_client=2**64 - 1)
    lst.update(add=IDS)
    assert lst.introspect()["total"] == 12
    assert lst.introspect()["subset"] == {"size": 2**64 - 1, "client": 2**64 - 1, "offered": 12}


def test_bad_updates_leave_the_list_intact() -> None:
    lst = peerlb.PeerList(subset=4, subset_client=7)
    lst.update(add=IDS)
    before = lst.introspect()
    outside = next(i for i in IDS if i not in retained(lst))
    with pytest.raises(peerlb.PeerAlreadyInList):
        lst.update(add=[outside])
    with pytest.raises(peerlb.PeerNotInList):
        lst.update(remove=["nope:1"])
    with pytest.raises(peerlb.InvalidArgument):
        lst.update(add=[""])
    with pytest.raises(peerlb.InvalidArgument):
        lst.update(remove=["a" * 5000])
    with pytest.raises(TypeError):
        lst.update(add=[None])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        lst.update(remove=[7])  # type: ignore[list-item]
    assert lst.introspect() == before
