"""The Python surface beyond the shared scenarios: argument checking, errors, choices,
context managers, introspection."""

from __future__ import annotations

import datetime
import gc
import weakref
from typing import Any, List

import pytest

import peerlb
from peerlb._errors import _BY_CODE


def running(*peers: Any, **kwargs: Any) -> peerlb.PeerList:
    lst = peerlb.PeerList(shuffle=False, **kwargs)
    lst.update(add=list(peers))
    lst.start()
    return lst


# --- errors ---------------------------------------------------------------------------


def test_one_exception_class_per_core_code() -> None:
    codes = {name for name, _ in peerlb.ERROR_CODES}
    assert codes == set(_BY_CODE)
    for code, cls in _BY_CODE.items():
        assert issubclass(cls, peerlb.PeerlbError)
        assert cls.code == code
        assert getattr(peerlb, cls.__name__) is cls
    assert issubclass(peerlb.ChooseTimeout, TimeoutError)
    assert issubclass(peerlb.InvalidArgument, ValueError)


def test_a_caught_panic_is_internal_error() -> None:
    from peerlb import _peerlb

    with pytest.raises(peerlb.InternalError) as info:
        _peerlb._panic("boom")
    assert info.value.code == "internal"
    assert isinstance(info.value, peerlb.PeerlbError) and isinstance(info.value, Exception)
    assert str(info.value).endswith("boom")


def test_error_codes_and_details() -> None:
    lst = running("a")
    with pytest.raises(peerlb.MultipleErrors) as info:
        lst.update(add=["a", "b"], remove=["zz"])
    e = info.value
    assert e.code == "multiple-errors"
    assert [x.code for x in e.errors] == ["peer-not-in-list", "peer-already-in-list"]
    assert [x.peer for x in e.errors] == ["zz", "a"]
    assert isinstance(e.errors[0], peerlb.PeerNotInList)
    assert len(lst) == 2  # b was still added
    with pytest.raises(peerlb.AlreadyStarted) as started:
        lst.start()
    assert started.value.errors == [started.value]
    assert "already running" in str(started.value)


def test_same_code_errors_keep_the_class() -> None:
    lst = running("a")
    with pytest.raises(peerlb.PeerNotInList) as info:
        lst.update(remove=["x", "y"])
    assert [x.peer for x in info.value.errors] == ["x", "y"]


def test_choose_errors() -> None:
    idle = peerlb.PeerList()
    with pytest.raises(peerlb.NotStarted):
        idle.choose()
    empty = running()
    with pytest.raises(peerlb.NoDeadline):
        empty.choose()
    with pytest.raises(peerlb.ChooseTimeout) as info:
        empty.choose(timeout=0.01)
    assert isinstance(info.value, TimeoutError)
    assert info.value.code == "timeout"
    with pytest.raises(peerlb.NoPeerAvailable):
        running(fail_fast=True).choose(timeout=5)


# --- bad types and values leave the list as it was ------------------------------------


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"strategy": 1}, TypeError),
        ({"strategy": "nope"}, peerlb.InvalidArgument),
        ({"shuffle": "yes"}, TypeError),
        ({"shuffle": 1}, TypeError),
        ({"fail_fast": 0}, TypeError),
        ({"seed": -1}, ValueError),
        ({"seed": 2**64}, ValueError),
        ({"seed": True}, TypeError),
        ({"seed": 1.5}, TypeError),
        ({"transport": object()}, TypeError),
        ({"transport": "tcp-magic"}, ValueError),
    ],
)
def test_bad_constructor_arguments(kwargs: Any, error: type) -> None:
    with pytest.raises(error):
        peerlb.PeerList(**kwargs)


def test_unknown_strategy_is_invalid_argument() -> None:
    with pytest.raises(ValueError) as info:
        peerlb.PeerList("nope")
    assert isinstance(info.value, peerlb.InvalidArgument)
    assert info.value.code == "invalid-argument"
    assert "round-robin" in str(info.value)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"add": "a:1"}, TypeError),
        ({"add": 5}, TypeError),
        ({"add": ["ok:1", 1]}, TypeError),
        ({"add": [("x:1", 1.5)]}, TypeError),
        ({"add": [("x:1", True)]}, TypeError),
        ({"add": [("x:1",)]}, TypeError),
        ({"add": [("x:1", -1)]}, ValueError),
        ({"add": [("x:1", 2**40)]}, ValueError),
        ({"add": [{"id": "x:1", "wieght": 2}]}, TypeError),
        ({"add": [{"weight": 2}]}, TypeError),
        ({"add": [{"id": 7}]}, TypeError),
        ({"add": [b"x:1"]}, TypeError),
        ({"remove": "a"}, TypeError),
        ({"remove": [None]}, TypeError),
    ],
)
def test_bad_update_arguments_apply_nothing(kwargs: Any, error: type) -> None:
    lst = running("a")
    before = lst.introspect()
    with pytest.raises(error):
        lst.update(**kwargs)
    assert lst.introspect() == before


@pytest.mark.parametrize("bad", ["", "x" * 1025, "a\0b"])
def test_invalid_ids_are_value_errors_and_others_still_apply(bad: str) -> None:
    lst = running("a")
    with pytest.raises(peerlb.InvalidArgument) as info:
        lst.update(add=[bad, "b"])
    assert isinstance(info.value, ValueError)
    assert len(lst) == 2


def test_peer_spec_forms() -> None:
    lst = peerlb.PeerList(shuffle=False)
    lst.update(add=["a", ("b", 2), {"id": "c", "weight": 3}, {"id": "d"}])
    lst.update(add=(p for p in ["e"]), remove=("a",))
    weights = [(p["id"], p["weight"]) for p in lst.introspect()["peers"]]
    assert weights == [("b", 2), ("c", 3), ("d", 1), ("e", 1)]
    lst.update()  # nothing to do
    lst.update(add=None, remove=None)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"timeout": -1}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": "1"}, TypeError),
        ({"timeout": True}, TypeError),
        ({"timeout": datetime.timedelta(seconds=-1)}, ValueError),
        ({"shard_key": 5}, TypeError),
    ],
)
def test_bad_choose_arguments(kwargs: Any, error: type) -> None:
    lst = running("a")
    with pytest.raises(error):
        lst.choose(**kwargs)
    assert lst.introspect()["peers"][0]["pending"] == 0


def test_timeouts_accept_numbers_and_timedeltas() -> None:
    lst = running("a")
    for timeout in [0, 1, 0.5, datetime.timedelta(milliseconds=100), float("inf"), None]:
        lst.choose(timeout=timeout).finish()
    lst.choose(shard_key="user-1").finish()
    lst.choose(shard_key=b"\x00\xff").finish()


def test_bad_finish_arguments_leave_the_choice_pending() -> None:
    lst = running("a")
    choice = lst.choose()
    with pytest.raises(ValueError):
        choice.finish("great")
    with pytest.raises(TypeError):
        choice.finish(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        choice.finish("ok", latency=-0.5)
    with pytest.raises(TypeError):
        choice.finish("ok", latency="fast")  # type: ignore[arg-type]
    assert not choice.finished
    assert lst.introspect()["peers"][0]["pending"] == 1
    choice.finish("failure", latency=datetime.timedelta(milliseconds=3))
    assert choice.finished


# --- choices --------------------------------------------------------------------------


def pending(lst: peerlb.PeerList) -> List[int]:
    return [p["pending"] for p in lst.introspect()["peers"]]


def test_finish_outcomes_and_exactly_once() -> None:
    lst = running("a")
    for outcome in ["ok", "failure", "declined", "cancelled"]:
        choice = lst.choose()
        assert pending(lst) == [1]
        choice.finish(outcome, 0.01)  # type: ignore[arg-type]
        assert pending(lst) == [0]
        with pytest.raises(peerlb.AlreadyFinished, match="already finished") as info:
            choice.finish()
        assert info.value.code == "already-finished"
        assert isinstance(info.value, RuntimeError) and isinstance(info.value, peerlb.PeerlbError)
        choice.release()  # no-op once finished
        choice.cancel()
        assert pending(lst) == [0]
    # After cancel (or the end of a `with` block) too.
    choice = lst.choose()
    choice.cancel()
    with pytest.raises(peerlb.AlreadyFinished):
        choice.finish("failure")
    with lst.choose() as c:
        pass
    with pytest.raises(peerlb.AlreadyFinished):
        c.finish()
    assert lst.introspect()["failures"] == 1  # the "failure" run of the loop only
    # Non-interned strings still parse.
    lst.choose().finish("".join(["de", "clined"]))  # type: ignore[arg-type]


def test_cancel_release_and_del() -> None:
    lst = running("a")
    choice = lst.choose()
    choice.cancel()
    assert choice.finished and pending(lst) == [0]
    choice = lst.choose()
    assert repr(choice) == "<peerlb.Choice peer=\"a\" pending>"
    choice.release()
    assert choice.finished and pending(lst) == [0]
    assert repr(choice) == "<peerlb.Choice peer=\"a\" finished>"
    choice = lst.choose()
    assert pending(lst) == [1]
    del choice
    assert pending(lst) == [0]


def test_choice_context_manager() -> None:
    lst = running("a", "b")
    with lst.choose() as c:
        assert c.peer == "a"
        assert pending(lst) == [1, 0]
    assert c.finished and pending(lst) == [0, 0]
    with pytest.raises(ZeroDivisionError):
        with lst.choose() as c:
            assert c.peer == "b"
            1 / 0
    assert c.finished and pending(lst) == [0, 0]
    with lst.choose() as c:
        c.finish("declined")  # finishing inside the block is fine
    assert pending(lst) == [0, 0]
    with pytest.raises(KeyboardInterrupt):
        with lst.choose() as c:
            raise KeyboardInterrupt
    assert c.finished


# --- the list -------------------------------------------------------------------------


def test_list_context_manager_len_repr_introspect() -> None:
    lst = peerlb.PeerList("fewest-pending", seed=7)
    lst.update(add=["a", "b", "c"])
    assert len(lst) == 3
    assert not lst.running
    assert lst.strategy == "fewest-pending"
    assert repr(lst) == '<peerlb.PeerList strategy="fewest-pending" Idle (0/3 available)>'
    with lst as same:
        assert same is lst
        assert lst.running
        info = lst.introspect()
        assert info["state"] == "running"
        assert info["summary"] == "Running (3/3 available)"
        assert info["transport"] == "always-available"
        assert sorted(p["id"] for p in info["peers"]) == ["a", "b", "c"]
        assert {p["status"] for p in info["peers"]} == {"available"}
    assert not lst.running
    assert lst.introspect()["peers"][0]["status"] == "uninitialized"
    with lst:
        lst.stop()  # stopping inside the block: __exit__ does not complain
    with pytest.raises(ValueError):
        with lst:
            raise ValueError("boom")
    assert not lst.running


ALL_STRATEGIES = [
    "round-robin",
    "random",
    "fewest-pending",
    "two-random-choices",
    "hash-ring",
    "maglev",
    "weighted-round-robin",
    "peak-ewma",
    "prequal",
]


def test_every_strategy_by_name() -> None:
    assert sorted(peerlb.STRATEGIES) == sorted(ALL_STRATEGIES)
    for name in peerlb.STRATEGIES:
        lst = running("a", "b", strategy=name)
        assert lst.choose().peer in {"a", "b"}
        assert lst.strategy == name


@pytest.mark.parametrize(
    "spec, reported",
    [
        ("hash-ring:ketama?bounded=1.25", "hash-ring?bounded=1.25"),
        ("hash-ring:fast", "hash-ring:fast"),
        ("peak-ewma?choices=all", "peak-ewma?choices=all"),
        ("maglev?table=251", "maglev?table=251"),
        ("maglev?table=65537", "maglev"),
        ("weighted-round-robin:orca?blackout_ms=0", "weighted-round-robin:orca?blackout_ms=0"),
        ("prequal?q_rif=0.5&probe_ms=1000", "prequal"),
    ],
)
def test_the_full_strategy_spec_is_reported(spec: str, reported: str) -> None:
    lst = peerlb.PeerList(spec)
    assert lst.strategy == reported
    assert lst.introspect()["strategy"] == reported
    assert repr(lst).startswith(f'<peerlb.PeerList strategy="{reported}" ')


def test_seed_makes_shuffle_reproducible() -> None:
    peers = [f"p{i}" for i in range(20)]

    def order(**kwargs: Any) -> List[str]:
        lst = peerlb.PeerList(**kwargs)
        lst.update(add=peers)
        lst.start()
        return [lst.choose().peer for _ in range(20)]

    # Round-robin visits every peer once in 20 picks, in the list's (shuffled) order.
    assert order(shuffle=False) == peers
    first = order(seed=3)
    assert sorted(first) == sorted(peers)
    assert first != peers, "seed=3 did not shuffle"  # 1 chance in 20! of a false alarm
    assert order(seed=3) == first
    assert order(seed=4) != first


def test_options_left_out_or_none_take_cores_defaults() -> None:
    lst = peerlb.PeerList(
        None, shuffle=None, seed=None, fail_fast=None, transport=None, ejection=None, clock=None
    )
    info = lst.introspect()
    assert info["strategy"] == "round-robin" and info["transport"] == "always-available"
    lst.update(add=[f"p{i}" for i in range(20)])
    lst.start()
    assert [lst.choose().peer for _ in range(20)] != [f"p{i}" for i in range(20)]  # shuffled
    with pytest.raises(peerlb.ChooseTimeout):  # waits (not fail-fast)
        running(clock=None).choose(timeout=0.01)
    # Ejection is on: five failures eject one of two peers.
    two = running("a", "b", ejection=None)
    for _ in range(5):
        c = two.choose()
        c.finish("failure" if c.peer == "a" else "ok")
        c = two.choose()
        c.finish("failure" if c.peer == "a" else "ok")
    assert two.introspect()["ejected"] == 1


def test_weight_zero_is_judged_by_core() -> None:
    lst = running("a")
    with pytest.raises(peerlb.InvalidArgument) as info:
        lst.update(add=[("zero", 0), ("b", 2)])
    assert [e.code for e in info.value.errors] == ["invalid-argument"]
    assert [(p["id"], p["weight"]) for p in lst.introspect()["peers"]] == [("a", 1), ("b", 2)]


def test_list_is_collected_with_a_transport_that_points_back() -> None:
    class Cyclic:
        def __init__(self) -> None:
            self.list: Any = None

        def retain(self, peer_id: str, subscriber: peerlb.Subscriber) -> None:
            subscriber.set_status("available")

        def release(self, peer_id: str, subscriber: peerlb.Subscriber) -> None:
            pass

    transport = Cyclic()
    lst = peerlb.PeerList(transport=transport)
    transport.list = lst
    ref = weakref.ref(lst)
    del lst, transport
    gc.collect()
    assert ref() is None


def test_version() -> None:
    assert peerlb.__version__.count(".") == 2


def test_errors_pickle() -> None:
    import pickle

    lst = running()
    with pytest.raises(peerlb.MultipleErrors) as info:
        lst.update(add=["a", "a"], remove=["z"])
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is peerlb.MultipleErrors and str(again) == str(info.value)
    assert [(x.code, x.peer) for x in again.errors] == [
        ("peer-not-in-list", "z"),
        ("peer-already-in-list", "a"),
    ]
    with pytest.raises(peerlb.ChooseTimeout) as timeout:
        running().choose(timeout=0)
    again_t = pickle.loads(pickle.dumps(timeout.value))
    assert isinstance(again_t, TimeoutError) and again_t.code == "timeout"
