"""PeerList.retry / retry_async, the retrying decorator and RetryBudget."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Awaitable, Callable, List

import pytest

import peerlb


def running(*peers: str, **kwargs: Any) -> peerlb.PeerList:
    lst = peerlb.PeerList(shuffle=False, **kwargs)
    lst.update(add=list(peers))
    lst.start()
    return lst


def pending(lst: peerlb.PeerList) -> int:
    return sum(p["pending"] for p in lst.introspect()["peers"])


def test_returning_raising_declining() -> None:
    lst = running("a", "b", "c")
    calls: List[str] = []

    def flaky(peer: str) -> str:
        calls.append(peer)
        if len(calls) < 3:
            raise ConnectionError(f"refused by {peer}")
        return f"answer from {peer}"

    assert lst.retry(flaky) == "answer from c"
    assert calls == ["a", "b", "c"]
    assert lst.introspect()["failures"] == 2 and pending(lst) == 0

    def always(peer: str) -> None:
        raise ConnectionError(f"down:{peer}")

    with pytest.raises(peerlb.RetryExhausted) as info:
        lst.retry(always, max_attempts=2)
    assert str(info.value) == "retry attempts exceeded (down:a; down:b)"
    assert info.value.code == "retry-exhausted"
    assert isinstance(info.value.__cause__, ConnectionError)
    assert str(info.value.__cause__) == "down:b"

    declined: List[str] = []

    def busy(peer: str) -> None:
        declined.append(peer)
        raise peerlb.Declined("overloaded")

    with pytest.raises(peerlb.Declined) as d:
        lst.retry(busy, max_attempts=5)
    assert declined == ["c"]  # not retried
    assert str(d.value) == 'peer "c" declined the request: overloaded'
    assert isinstance(d.value.__cause__, peerlb.Declined) and d.value.__cause__ is not d.value
    assert lst.introspect()["failures"] == 4  # declined is not a failure
    assert pending(lst) == 0


def test_an_empty_exception_message_names_the_type() -> None:
    lst = running("a")

    def f(peer: str) -> None:
        raise TimeoutError()

    with pytest.raises(peerlb.RetryExhausted, match=r"\(TimeoutError\)"):
        lst.retry(f, max_attempts=1)


def test_shard_key_and_retry_of_a_single_peer() -> None:
    lst = running("a", "b", "c", strategy="hash-ring")
    first: List[str] = []
    lst.retry(lambda p: first.append(p), shard_key="user-1")
    again: List[str] = []
    lst.retry(lambda p: again.append(p), shard_key=b"user-1")
    assert first == again
    one = running("solo")
    seen: List[str] = []

    def f(peer: str) -> None:
        seen.append(peer)
        raise RuntimeError("x")

    with pytest.raises(peerlb.RetryExhausted):
        one.retry(f, max_attempts=3)
    assert seen == ["solo", "solo", "solo"]


def test_base_exceptions_propagate_and_cancel_the_attempt() -> None:
    lst = running("a", "b")
    tries: List[str] = []

    def stop(peer: str) -> None:
        tries.append(peer)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lst.retry(stop)
    assert tries == ["a"] and pending(lst) == 0 and lst.introspect()["failures"] == 0


def test_retry_errors_when_no_peer() -> None:
    lst = running()
    with pytest.raises(peerlb.NoDeadline):
        lst.retry(lambda p: p)
    with pytest.raises(peerlb.ChooseTimeout):
        lst.retry(lambda p: p, timeout=0.01)
    with pytest.raises(peerlb.NotStarted):
        peerlb.PeerList().retry(lambda p: p)


def test_retry_waits_for_a_peer_within_its_timeout() -> None:
    lst = running()
    threading.Timer(0.05, lambda: lst.update(add=["late"])).start()
    assert lst.retry(lambda p: p, timeout=5.0) == "late"


def test_timeout_ends_the_retries() -> None:
    lst = running("a", "b", "c")

    def slow_fail(peer: str) -> None:
        time.sleep(0.06)
        raise RuntimeError(f"slow {peer}")

    with pytest.raises(peerlb.ChooseTimeout) as info:
        lst.retry(slow_fail, max_attempts=100, timeout=0.05)
    assert "slow a" in str(info.value) and isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"max_attempts": 0}, peerlb.InvalidArgument),
        ({"max_attempts": -1}, peerlb.InvalidArgument),
        ({"max_attempts": 2**32}, peerlb.InvalidArgument),
        ({"max_attempts": 2.0}, TypeError),
        ({"max_attempts": True}, TypeError),
        ({"timeout": -1}, peerlb.InvalidArgument),
        ({"timeout": "1"}, TypeError),
        ({"budget": 0.2}, TypeError),
        ({"budget": peerlb.ManualClock()}, TypeError),
        ({"shard_key": 5}, TypeError),
        ({"nope": 1}, TypeError),
    ],
)
def test_bad_retry_arguments_call_nothing(kwargs: Any, error: type) -> None:
    lst = running("a")
    called: List[str] = []
    with pytest.raises(error):
        lst.retry(called.append, **kwargs)
    assert called == [] and lst.introspect()["chosen"] == 0


@pytest.mark.parametrize("fn", [None, 1, "f"])
def test_retry_needs_a_callable(fn: Any) -> None:
    lst = running("a")
    with pytest.raises(TypeError, match="callable"):
        lst.retry(fn)
    with pytest.raises(TypeError, match="callable"):
        lst.retry_async(fn)
    assert lst.introspect()["chosen"] == 0


def test_an_async_function_given_to_retry_is_a_type_error() -> None:
    lst = running("a")

    async def f(peer: str) -> str:
        return peer

    with pytest.raises(TypeError, match="retry_async"):
        lst.retry(f)  # type: ignore[arg-type]
    assert pending(lst) == 0 and lst.introspect()["failures"] == 0


def test_retry_may_call_back_into_the_list() -> None:
    lst = running("a", "b")

    def f(peer: str) -> str:
        lst.disable(peer)
        with lst.choose() as c:
            return c.peer

    assert lst.retry(f) == "b"


def test_retry_budget() -> None:
    clock = peerlb.ManualClock()
    budget = peerlb.RetryBudget(ratio=0.5, min_per_sec=0, ttl=10, clock=clock)
    assert budget.balance == 0 and "RetryBudget" in repr(budget)
    lst = running("a", "b", clock=clock, ejection=False)

    def fail(peer: str) -> None:
        raise RuntimeError(peer)

    with pytest.raises(peerlb.RetryExhausted) as info:
        lst.retry(fail, budget=budget)
    assert str(info.value) == "retry budget exhausted (a)"
    with pytest.raises(peerlb.RetryExhausted, match="budget exhausted"):
        lst.retry(fail, budget=budget)  # 2 calls: 1 retry allowed
    clock.advance(11)
    assert budget.balance == 0
    standard = peerlb.RetryBudget()
    assert standard.balance == 100  # 10 per second over 10 s


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"ratio": 1.5}, peerlb.InvalidArgument),
        ({"ratio": -0.1}, peerlb.InvalidArgument),
        ({"ratio": float("nan")}, peerlb.InvalidArgument),
        ({"ratio": "0.2"}, TypeError),
        ({"ratio": True}, TypeError),
        ({"min_per_sec": -1}, peerlb.InvalidArgument),
        ({"min_per_sec": 2**32}, peerlb.InvalidArgument),
        ({"min_per_sec": 1.5}, TypeError),
        ({"ttl": 0.5}, peerlb.InvalidArgument),
        ({"ttl": 61}, peerlb.InvalidArgument),
        ({"ttl": -1}, peerlb.InvalidArgument),
        ({"ttl": "10"}, TypeError),
        ({"clock": "manual"}, TypeError),
    ],
)
def test_bad_budget_arguments(kwargs: Any, error: type) -> None:
    with pytest.raises(error):
        peerlb.RetryBudget(**kwargs)


def test_retrying_decorator() -> None:
    lst = running("a", "b", "c")
    calls: List[str] = []

    @peerlb.retrying(lst, max_attempts=2)
    def get(peer: str, path: str, *, ok_on: str = "b") -> str:
        calls.append(peer)
        if peer != ok_on:
            raise ConnectionError("refused")
        return f"{peer}{path}"

    assert get("/x") == "b/x"
    assert get.__name__ == "get"
    with pytest.raises(peerlb.RetryExhausted):
        get("/y", ok_on="nobody")
    assert calls == ["a", "b", "c", "a"]
    with pytest.raises(TypeError):
        peerlb.retrying("not a list")  # type: ignore[arg-type]
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.retrying(lst, max_attempts=0)
    with pytest.raises(TypeError):
        peerlb.retrying(lst, timeout="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.retrying(lst, budget=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.retrying(lst)(42)  # type: ignore[arg-type]
    assert lst.introspect()["chosen"] == len(calls)  # the bad decorations chose nothing


# --- asyncio ----------------------------------------------------------------------------


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def test_retry_async_returning_raising_declining() -> None:
    lst = running("a", "b", "c")
    calls: List[str] = []

    async def flaky(peer: str) -> str:
        calls.append(peer)
        await asyncio.sleep(0)
        if len(calls) < 2:
            raise ConnectionError("refused")
        return peer

    assert run(lst.retry_async(flaky)) == "b"

    async def always(peer: str) -> None:
        raise OSError(f"down {peer}")

    with pytest.raises(peerlb.RetryExhausted) as info:
        run(lst.retry_async(always, max_attempts=3))
    assert str(info.value) == "retry attempts exceeded (down c; down a; down b)"
    assert isinstance(info.value.__cause__, OSError)

    async def busy(peer: str) -> None:
        raise peerlb.Declined("busy")

    with pytest.raises(peerlb.Declined, match="declined the request: busy"):
        run(lst.retry_async(busy))
    assert pending(lst) == 0


def test_retry_async_waits_without_blocking_the_loop() -> None:
    lst = running()

    async def main() -> List[str]:
        ticks: List[str] = []

        async def ticker() -> None:
            for _ in range(3):
                await asyncio.sleep(0.01)
                ticks.append("tick")

        async def add_later() -> None:
            await asyncio.sleep(0.05)
            lst.update(add=["late"])

        async def echo(peer: str) -> str:
            return peer

        got, _, _ = await asyncio.gather(
            lst.retry_async(echo, timeout=5.0), ticker(), add_later()
        )
        assert ticks == ["tick"] * 3
        return [got]

    assert asyncio.run(main()) == ["late"]


def test_retry_async_cancelled() -> None:
    lst = running("a")

    async def main() -> None:
        entered = asyncio.Event()

        async def hang(peer: str) -> None:
            entered.set()
            await asyncio.sleep(60)

        task = asyncio.ensure_future(lst.retry_async(hang))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert pending(lst) == 0 and lst.introspect()["failures"] == 0


def test_retry_async_needs_awaitables() -> None:
    lst = running("a")
    with pytest.raises(TypeError, match="awaitable"):
        run(lst.retry_async(lambda peer: peer))  # type: ignore[arg-type,return-value]
    assert pending(lst) == 0


def test_retrying_decorator_async() -> None:
    lst = running("a", "b")

    @peerlb.retrying(lst, max_attempts=2)
    async def get(peer: str, n: int) -> str:
        if peer == "a":
            raise ConnectionError("no")
        return f"{peer}{n}"

    assert asyncio.run(get(1)) == "b1"


def test_keyboard_interrupt_ends_a_retry_waiting_for_a_peer() -> None:
    script = textwrap.dedent(
        """
        import os, signal, threading, time, peerlb
        signal.signal(signal.SIGINT, signal.default_int_handler)
        lst = peerlb.PeerList()
        lst.start()
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            lst.retry(lambda p: p, timeout=60)
        except KeyboardInterrupt:
            print("interrupted after %.1fs" % (time.monotonic() - started))
            lst.update(add=["a"])
            print(lst.retry(lambda p: p, timeout=1))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0].startswith("interrupted after"), out.stdout
    assert lines[1] == "a"


def test_threads_retrying_with_subscribers_and_admin_at_once() -> None:
    lst = running(*[f"p{i}" for i in range(8)], ejection={"failures": 2, "base_ms": 1})
    seen: List[str] = []
    lock = threading.Lock()

    def on(e: peerlb.PeerEvent) -> None:
        with lock:
            seen.append(e.kind)
        lst.introspect()  # re-enters, from whichever thread delivers

    lst.subscribe(on)
    errors: List[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(200):
                def attempt(peer: str) -> str:
                    if peer in ("p0", "p1"):
                        raise ConnectionError(peer)
                    return peer

                assert lst.retry(attempt, max_attempts=8, timeout=10) not in ("p0", "p1")
                if i % 50 == n:
                    lst.disable("p7")
                    lst.enable("p7")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert errors == []
    assert "ejected" in seen and "disabled" in seen
    assert pending(lst) == 0
