"""Replays one ``tests/conformance/*.json`` scenario against the Python package.

The format is described in ``tests/conformance/README.md``; this runner mirrors the Rust
one (``core/tests/conformance.rs``). It runs in two modes: ``sync`` (``choose`` blocks,
``while_waiting`` runs its steps from another thread) and ``async`` (every ``choose`` is
``await lst.choose_async(...)`` on one event loop; ``while_waiting`` steps run while the
choice is pending on that loop).

The ``drop`` step calls ``choice.cancel()`` (the Python way to abandon a choice; a
``del`` of the last reference does the same). A held name stays known after its choice was
finished or dropped, so a second ``finish`` calls ``finish`` on the same ``Choice`` again
(it must raise ``AlreadyFinished``). ``retry`` steps run ``lst.retry`` (sync) or
``await lst.retry_async`` (async) with a function that plays the scripted attempts by
returning, raising ``RuntimeError(message)`` (failure) or ``peerlb.Declined(message)``
(with ``remote_code`` when the attempt gives one). Sessions open and fail over with the
blocking calls (sync) or their ``_async`` forms (async); ``session_drop`` deletes the last
reference to the session (which closes it).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TypeVar

import peerlb
from peerlb._errors import _BY_CODE
from peerlb._peerlb import _RequestCall

CONFORMANCE_DIR = Path(__file__).resolve().parents[3] / "tests" / "conformance"

T = TypeVar("T")


def scenario_files() -> List[Path]:
    return sorted(CONFORMANCE_DIR.glob("*.json"))


class Scripted:
    """The scripted transport of the format, as a Python transport object."""

    name = "scripted"

    def __init__(self, spec: Dict[str, Any]) -> None:
        self.initial: Optional[str] = spec.get("initial_status", "available")
        self.fail_retain = set(spec.get("fail_retain", []))
        self.fail_release = set(spec.get("fail_release", []))
        self.calls: List[str] = []
        self.subscribers: Dict[str, peerlb.Subscriber] = {}
        self.lock = threading.Lock()

    def retain(self, peer_id: str, subscriber: peerlb.Subscriber) -> None:
        with self.lock:
            self.calls.append(f"retain {peer_id}")
        if peer_id in self.fail_retain:
            raise RuntimeError(f"scripted failure retaining {peer_id}")
        self.subscribers[peer_id] = subscriber
        if self.initial is not None:
            # Reported from inside retain: every scenario exercises re-entrancy.
            subscriber.set_status(self.initial)  # type: ignore[arg-type]

    def release(self, peer_id: str, subscriber: peerlb.Subscriber) -> None:
        with self.lock:
            self.calls.append(f"release {peer_id}")
        if peer_id in self.fail_release:
            raise RuntimeError(f"scripted failure releasing {peer_id}")


class Run:
    def __init__(self, file: str, mode: str) -> None:
        self.file = file
        self.mode = mode
        self.list: Optional[peerlb.PeerList] = None
        self.transport: Optional[Scripted] = None
        self.held: Dict[str, peerlb.Choice] = {}
        # Held choices already finished or dropped, by name (finishing again must fail).
        self.done: Dict[str, peerlb.Choice] = {}
        self.loop = asyncio.new_event_loop() if mode == "async" else None
        self.clock: Optional[peerlb.ManualClock] = None
        self.events: List[str] = []
        self.subscription: Optional[peerlb.Subscription] = None
        self.budget: Optional[peerlb.RetryBudget] = None
        self.sessions: Dict[str, peerlb.Session] = {}
        self.session_events: List[str] = []
        self.session_subscription: Optional[peerlb.Subscription] = None

    def close(self) -> None:
        self.sessions.clear()
        for choice in self.held.values():
            choice.cancel()
        if self.loop is not None:
            self.loop.close()

    @property
    def lst(self) -> peerlb.PeerList:
        assert self.list is not None, f"{self.file}: scenario must start with `new`"
        return self.list

    def check(self, ctx: str, step: Dict[str, Any], fn: Callable[[], T]) -> Optional[T]:
        expected = step.get("error")
        try:
            value = fn()
        except peerlb.PeerlbError as e:
            if expected is None:
                raise AssertionError(f"{ctx}: unexpected error {e.code}: {e}") from e
            assert e.code == expected, f"{ctx}: wrong error code {e.code} ({e})"
            assert isinstance(e, _BY_CODE[expected]), f"{ctx}: wrong class {type(e)}"
            if expected == "timeout":
                assert isinstance(e, TimeoutError)
            if expected == "invalid-argument":
                assert isinstance(e, ValueError)
            if expected == "already-finished":
                assert isinstance(e, RuntimeError)
            if "errors" in step:
                got = [x.code for x in e.errors]
                assert got == step["errors"], f"{ctx}: individual errors {got} ({e})"
            return None
        assert expected is None, f"{ctx}: expected error {expected}, got success"
        return value

    def new(self, ctx: str, step: Dict[str, Any]) -> None:
        kwargs: Dict[str, Any] = {"shuffle": step.get("shuffle", False)}
        if "seed" in step:
            kwargs["seed"] = step["seed"]
        if "fail_fast" in step:
            kwargs["fail_fast"] = step["fail_fast"]
        for key in ("name", "max_pending", "max_pending_per_peer", "metrics", "peer_labels"):
            if key in step:
                kwargs[key] = step[key]
        if "capacity" in step:
            kwargs["capacity"] = step["capacity"]
        for key in ("local_zone", "min_cluster_size", "overprovisioning_factor"):
            if key in step:
                kwargs[key] = step[key]
        self.sessions.clear()
        self.transport = None
        transport = step.get("transport")
        if transport is None or transport == "always-available":
            pass
        elif isinstance(transport, dict) and transport.get("kind") == "scripted":
            self.transport = Scripted(transport)
            kwargs["transport"] = self.transport
        else:
            raise AssertionError(f"{ctx}: unknown transport {transport!r}")
        ejection = step.get("ejection", True)
        if isinstance(ejection, dict):
            kwargs["ejection"] = dict(ejection)
        elif ejection is not True:
            kwargs["ejection"] = ejection
        self.clock = None
        clock = step.get("clock", "real")
        if clock == "manual":
            self.clock = peerlb.ManualClock()
            kwargs["clock"] = self.clock
        elif clock != "real":
            raise AssertionError(f"{ctx}: unknown clock {clock!r}")
        self.budget = None
        for choice in self.held.values():
            choice.cancel()
        self.held.clear()
        self.done.clear()
        if self.subscription is not None:
            self.subscription.cancel()
        self.subscription = None
        self.events = []
        self.list = self.check(
            ctx, step, lambda: peerlb.PeerList(step.get("strategy", "round-robin"), **kwargs)
        )
        if self.session_subscription is not None:
            self.session_subscription.cancel()
        self.session_subscription = None
        self.session_events = []
        if self.list is not None:
            events = self.events
            self.subscription = self.list.subscribe(lambda e: events.append(str(e)))
            session_events = self.session_events
            self.session_subscription = self.list.subscribe_sessions(
                lambda e: session_events.append(str(e))
            )

    def choose_kwargs(self, step: Dict[str, Any]) -> Dict[str, Any]:
        kwargs: Dict[str, Any] = {}
        if "timeout_ms" in step:
            kwargs["timeout"] = step["timeout_ms"] / 1000.0
        if "shard_key" in step:
            kwargs["shard_key"] = step["shard_key"]
        return kwargs

    def do_choose(self, kwargs: Dict[str, Any]) -> peerlb.Choice:
        if self.loop is None:
            return self.lst.choose(**kwargs)

        async def go() -> peerlb.Choice:
            return await self.lst.choose_async(**kwargs)

        return self.loop.run_until_complete(go())

    def choose(self, ctx: str, step: Dict[str, Any]) -> None:
        kwargs = self.choose_kwargs(step)
        during = step.get("while_waiting")
        if during is None:
            choice = self.check(ctx, step, lambda: self.do_choose(kwargs))
        elif self.loop is None:
            result: Dict[str, Any] = {}

            def wait() -> None:
                try:
                    result["choice"] = self.lst.choose(**kwargs)
                except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
                    result["error"] = e

            waiter = threading.Thread(target=wait)
            waiter.start()
            time.sleep(0.02)
            for i, inner in enumerate(during):
                self.step(f"{ctx}.while_waiting[{i}]", inner)
            waiter.join(30)
            assert not waiter.is_alive(), f"{ctx}: choose did not return"

            def outcome() -> peerlb.Choice:
                if "error" in result:
                    raise result["error"]
                return result["choice"]  # type: ignore[no-any-return]

            choice = self.check(ctx, step, outcome)
        else:

            async def go() -> peerlb.Choice:
                pending = self.lst.choose_async(**kwargs)
                await asyncio.sleep(0.02)
                for i, inner in enumerate(during):
                    self.step(f"{ctx}.while_waiting[{i}]", inner)
                return await asyncio.wait_for(pending, 30)

            assert self.loop is not None
            loop = self.loop
            choice = self.check(ctx, step, lambda: loop.run_until_complete(go()))
        if choice is None:
            return
        if "expect" in step:
            assert choice.peer == step["expect"], f"{ctx}: chose {choice.peer}"
        if "expect_one_of" in step:
            assert choice.peer in step["expect_one_of"], f"{ctx}: chose {choice.peer}"
        if "hold" in step:
            self.held[step["hold"]] = choice
        else:
            choice.finish(step.get("outcome", "ok"))

    def choose_many(self, ctx: str, step: Dict[str, Any]) -> None:
        kwargs = self.choose_kwargs(step)
        got: List[str] = []
        for _ in range(step["count"]):
            choice = self.do_choose(kwargs)
            got.append(choice.peer)
            choice.finish(step.get("outcome", "ok"))
        if "expect" in step:
            assert got == step["expect"], f"{ctx}: order {got}"
        counts = collections.Counter(got)
        if "expect_counts" in step:
            assert dict(counts) == step["expect_counts"], f"{ctx}: counts {dict(counts)}"
        if "expect_only" in step:
            for p in counts:
                assert p in step["expect_only"], f"{ctx}: chose {p}"
        if "expect_all" in step:
            assert set(counts) == set(step["expect_all"]), f"{ctx}: counts {dict(counts)}"

    def finish(self, ctx: str, step: Dict[str, Any]) -> None:
        name = step["choice"]
        latency = step.get("latency_ms")
        outcome = step.get("outcome", "ok")
        seconds = None if latency is None else latency / 1000.0
        load = step.get("load")
        if name in self.done:
            choice = self.done[name]
        else:
            assert name in self.held, f"{ctx}: no held choice {name}"
            choice = self.held.pop(name)
            self.done[name] = choice

        def finish() -> None:
            # ORCA text is passed as text; fields as a LoadReport.
            report = peerlb.LoadReport(**load) if isinstance(load, dict) else load
            choice.finish(outcome, seconds, load=report)

        self.check(ctx, step, finish)

    def list_backends(self, ctx: str, step: Dict[str, Any]) -> None:
        got = self.lst.list_backends()
        want = step["expect"]
        assert len(got) == len(want), f"{ctx}: backends {got}"
        for g, w in zip(got, want):
            for k, v in w.items():
                assert g[k] == v, f"{ctx}: backend field {k} in {g}"  # type: ignore[literal-required]

    def introspect(self, ctx: str, step: Dict[str, Any]) -> None:
        got = self.lst.introspect()
        for key, value in step["expect"].items():
            if key == "peers":
                assert len(got["peers"]) == len(value), f"{ctx}: peers in {got}"
                for g, w in zip(got["peers"], value):
                    for k, v in w.items():
                        assert g[k] == v, f"{ctx}: peer field {k} in {g}"
            else:
                assert got[key] == value, f"{ctx}: field {key} in {got}"

    def step(self, ctx: str, step: Dict[str, Any]) -> None:
        op = step["op"]
        ctx = f"{self.file} [{self.mode}]: {ctx} ({op})"
        if op == "new":
            self.new(ctx, step)
        elif op == "update":
            add = [a if isinstance(a, str) else dict(a) for a in step.get("add", [])]
            remove = step.get("remove", [])
            self.check(ctx, step, lambda: self.lst.update(add=add, remove=remove))
        elif op == "start":
            self.check(ctx, step, self.lst.start)
        elif op == "stop":
            self.check(ctx, step, self.lst.stop)
        elif op == "set_status":
            assert self.transport is not None, f"{ctx}: set_status needs scripted"
            sub = self.transport.subscribers.get(step["peer"])
            assert sub is not None, f"{ctx}: {step['peer']} was never retained"
            accepted = sub.set_status(step["status"])
            if "accepted" in step:
                assert accepted == step["accepted"], f"{ctx}: accepted {accepted}"
        elif op == "choose":
            self.choose(ctx, step)
        elif op == "choose_many":
            self.choose_many(ctx, step)
        elif op == "finish":
            self.finish(ctx, step)
        elif op == "drop":
            name = step["choice"]
            choice = self.held.pop(name)
            choice.cancel()
            self.done[name] = choice
        elif op == "list_backends":
            self.list_backends(ctx, step)
        elif op == "metrics":
            text = self.lst.metrics()
            lines = text.splitlines()
            for want in step.get("contains", []):
                assert want in lines, f"{ctx}: no line {want!r} in\n{text}"
            for absent in step.get("absent", []):
                assert absent not in text, f"{ctx}: {absent!r} in\n{text}"
            if step.get("empty"):
                assert text == "", f"{ctx}: metrics should be empty: {text!r}"
        elif op == "introspect":
            self.introspect(ctx, step)
        elif op == "advance":
            assert self.clock is not None, f"{ctx}: advance needs clock: manual"
            self.clock.advance(step["ms"] / 1000.0)
        elif op == "admin":
            self.admin(ctx, step)
        elif op == "events":
            got_events = list(self.events)
            self.events.clear()
            assert got_events == step.get("expect", []), f"{ctx}: events {got_events}"
        elif op == "retry_budget":
            # Only what the step gives: core's defaults apply to the rest.
            options: Dict[str, Any] = {"clock": self.clock}
            for key in ("ratio", "min_per_sec"):
                if key in step:
                    options[key] = step[key]
            if "ttl_ms" in step:
                options["ttl"] = step["ttl_ms"] / 1000.0
            self.budget = self.check(ctx, step, lambda: peerlb.RetryBudget(**options))
        elif op == "retry":
            self.retry(ctx, step)
        elif op == "request":
            self.request(ctx, step)
        elif op in ("open_session", "session_failover", "session_ok", "session_decline",
                    "session_close", "session_drop", "session_check", "session_events"):
            self.session_step(ctx, op, step)
        elif op == "add_backend":
            data = step["data"] if isinstance(step["data"], str) else dict(step["data"])
            answer = json.loads(self.lst.add_backend(data))
            for k, v in step["expect"].items():
                assert answer.get(k) == v, f"{ctx}: add_backend field {k} in {answer}"
            if answer["code"] != peerlb.AdminResult.FAILED:
                assert answer["code"] == peerlb.AdminResult.SUCCESS, f"{ctx}: {answer}"
        elif op == "backend_config":
            text = self.check(ctx, step, lambda: self.lst.backend_config(step["peer"]))
            if text is not None:
                config = json.loads(text)
                for k, v in step["expect"].items():
                    assert config.get(k) == v, f"{ctx}: backend_config field {k} in {config}"
        elif op == "queries":
            self.queries(ctx, step)
        elif op == "transport_calls":
            assert self.transport is not None, f"{ctx}: needs scripted transport"
            with self.transport.lock:
                got = list(self.transport.calls)
                self.transport.calls.clear()
            assert got == step.get("expect", []), f"{ctx}: transport calls {got}"
        else:
            raise AssertionError(f"{ctx}: unknown op {op!r}")


    def admin(self, ctx: str, step: Dict[str, Any]) -> None:
        action = getattr(self.lst, step["action"])
        want = step.get("expect", "success")
        try:
            result = action(step["peer"])
        except peerlb.PeerlbError as e:
            assert want == "failed", f"{ctx}: admin failed unexpectedly: {e.code}: {e}"
            if "error" in step:
                assert e.code == step["error"], f"{ctx}: admin error {e.code} ({e})"
            return
        assert isinstance(result, peerlb.AdminResult), f"{ctx}: returned {result!r}"
        assert str(result) == want, f"{ctx}: admin result {result!r}"
        # The balancer's numbers: 1 success, 3 no action required.
        assert result == {"success": 1, "no-action-required": 3}[want], f"{ctx}: {result!r}"

    def remote(self, ctx: str, step: Dict[str, Any], error: peerlb.PeerlbError) -> None:
        if "expect_peer" in step:
            assert error.peer == step["expect_peer"], f"{ctx}: error's peer {error.peer} ({error})"
        if "expect_remote_code" in step:
            want = step["expect_remote_code"]
            assert error.remote_code == want, f"{ctx}: remote code {error.remote_code} ({error})"

    def run_loop(self, make: Callable[[], Any]) -> Any:
        assert self.loop is not None

        async def go() -> Any:
            return await make()

        return self.loop.run_until_complete(go())

    def session_step(self, ctx: str, op: str, step: Dict[str, Any]) -> None:
        if op == "session_events":
            got = list(self.session_events)
            self.session_events.clear()
            assert got == step.get("expect", []), f"{ctx}: session events {got}"
            return
        if op == "open_session":
            kwargs = self.choose_kwargs(step)
            if self.loop is None:
                session = self.check(ctx, step, lambda: self.lst.open_session(**kwargs))
            else:
                session = self.check(
                    ctx, step, lambda: self.run_loop(lambda: self.lst.open_session_async(**kwargs))
                )
            if session is None:
                return
            if "expect" in step:
                assert session.peer == step["expect"], f"{ctx}: opened on {session.peer}"
            if "expect_one_of" in step:
                assert session.peer in step["expect_one_of"], f"{ctx}: opened on {session.peer}"
            if "expect_id" in step:
                assert session.id == step["expect_id"], f"{ctx}: id {session.id}"
            self.sessions[step["name"]] = session
            return
        name = step["session"]
        assert name in self.sessions, f"{ctx}: no session {name}"
        s = self.sessions[name]
        if op == "session_failover":
            kwargs: Dict[str, Any] = {"reason": step.get("reason", "")}
            if "timeout_ms" in step:
                kwargs["timeout"] = step["timeout_ms"] / 1000.0
            if "remote_code" in step:
                kwargs["remote_code"] = step["remote_code"]

            def failover() -> str:
                if self.loop is None:
                    return s.failover(**kwargs)
                return self.run_loop(lambda: s.failover_async(**kwargs))  # type: ignore[no-any-return]

            failed: List[peerlb.PeerlbError] = []

            def attempt() -> str:
                try:
                    return failover()
                except peerlb.PeerlbError as e:
                    failed.append(e)
                    raise

            peer = self.check(ctx, step, attempt)
            if failed:
                self.remote(ctx, step, failed[0])
            if peer is None:
                return
            assert peer == s.peer, f"{ctx}: failover gave {peer}, session.peer is {s.peer}"
            if "expect" in step:
                assert peer == step["expect"], f"{ctx}: failed over to {peer}"
            if "expect_one_of" in step:
                assert peer in step["expect_one_of"], f"{ctx}: failed over to {peer}"
        elif op == "session_ok":
            self.check(ctx, step, s.ok)
        elif op == "session_decline":
            kwargs = {}
            if "remote_code" in step:
                kwargs["remote_code"] = step["remote_code"]
            try:
                error = s.decline(step.get("reason", ""), **kwargs)
            except peerlb.PeerlbError as e:
                error = e
            assert isinstance(error, peerlb.PeerlbError), f"{ctx}: decline gave {error!r}"
            assert error.code == step["expect_code"], f"{ctx}: decline gave {error.code}"
            self.remote(ctx, step, error)
        elif op == "session_close":
            self.check(ctx, step, s.close)
        elif op == "session_drop":
            del self.sessions[name]
            del s
            gc.collect()
        elif op == "session_check":
            got = {
                "id": s.id,
                "peer": s.peer,
                "bound": s.bound,
                "open": not s.closed,
                "failover_requested": s.failover_requested,
            }
            for k, v in step["expect"].items():
                assert got[k] == v, f"{ctx}: session field {k} in {got}"

    def queries(self, ctx: str, step: Dict[str, Any]) -> None:
        lst = self.lst
        if "capacity" in step:
            assert lst.capacity == step["capacity"], f"{ctx}: capacity {lst.capacity}"
        for peer, want in step.get("available", {}).items():
            assert lst.available(peer) == want, f"{ctx}: available({peer})"
        for peer, want in step.get("uninitialized", {}).items():
            assert lst.uninitialized(peer) == want, f"{ctx}: uninitialized({peer})"
        for key in ("num_available", "num_unavailable", "num_uninitialized"):
            if key in step:
                got = getattr(lst, key)()
                assert got == step[key], f"{ctx}: {key}() is {got}"
        if "peers" in step:
            assert lst.peers() == step["peers"], f"{ctx}: peers() is {lst.peers()}"

    def request(self, ctx: str, step: Dict[str, Any]) -> None:
        """One request under a request rule, its attempts' results scripted."""
        options: Dict[str, Any] = {}
        given = step.get("rule", {})
        for key in ("failure_statuses", "max_attempts", "retry_any_method"):
            if key in given:
                options[key] = given[key]
        if given.get("budget") is False:
            options["budget"] = False
        elif given.get("budget") == "shared":
            assert self.budget is not None, f"{ctx}: a retry_budget step first"
            options["budget"] = self.budget
        rule = self.check(ctx, step, lambda: peerlb.RequestRule(**options))
        if rule is None:
            return
        call = _RequestCall(
            rule,
            self.lst,
            step.get("method", "GET"),
            step.get("body_replayable", True),
            step.get("idempotent"),
        )
        attempts = step["attempts"]
        for i, attempt in enumerate(attempts):
            actx = f"{ctx}: attempt {i + 1}"
            peer, _host, _port = call.choose()
            if "expect" in attempt:
                assert peer == attempt["expect"], f"{actx}: peer {peer}"
            retry = call.report(
                status=attempt.get("status"),
                error=attempt.get("result"),
                outcome=attempt.get("classified"),
            )
            assert retry == attempt.get("retry", i + 1 < len(attempts)), f"{actx}: retry {retry}"
            if "stopped" in attempt:
                assert call.stopped == attempt["stopped"], f"{actx}: stop reason {call.stopped}"
        assert call.attempts == len(attempts), f"{ctx}: attempts {call.attempts}"

    def retry(self, ctx: str, step: Dict[str, Any]) -> None:
        script: List[str] = step.get("attempts", [])
        peers: List[str] = []

        def attempt(peer: str) -> str:
            peers.append(peer)
            assert len(peers) <= len(script), f"{ctx}: attempt {len(peers)} not scripted"
            what = script[len(peers) - 1]
            if what == "ok":
                return "done"
            head, _, message = what.partition(":")
            kind, _, code = head.partition("@")
            remote_code = int(code) if code else None
            if kind == "failure":
                failure = RuntimeError(message)
                failure.remote_code = remote_code  # type: ignore[attr-defined]
                raise failure
            if kind == "declined":
                raise peerlb.Declined(message, remote_code=remote_code)
            raise AssertionError(f"{ctx}: bad scripted attempt {what!r}")

        kwargs: Dict[str, Any] = {}
        if "max_attempts" in step:
            kwargs["max_attempts"] = step["max_attempts"]
        if "timeout_ms" in step:
            kwargs["timeout"] = step["timeout_ms"] / 1000.0
        if "shard_key" in step:
            kwargs["shard_key"] = step["shard_key"]
        if self.budget is not None:
            kwargs["budget"] = self.budget

        def run() -> str:
            if self.loop is None:
                return self.lst.retry(attempt, **kwargs)

            async def attempt_async(peer: str) -> str:
                await asyncio.sleep(0)
                return attempt(peer)

            async def go() -> str:
                return await self.lst.retry_async(attempt_async, **kwargs)

            return self.loop.run_until_complete(go())

        error: Optional[peerlb.PeerlbError] = None
        try:
            result = run()
        except peerlb.PeerlbError as e:
            error = e
        if "expect_peers" in step:
            assert peers == step["expect_peers"], f"{ctx}: attempts' peers {peers}"
        if "expect_attempts" in step:
            assert len(peers) == step["expect_attempts"], f"{ctx}: attempts {peers}"
        if step.get("expect_distinct"):
            assert len(set(peers)) == len(peers), f"{ctx}: peers not distinct {peers}"
        if error is None:
            assert "error" not in step, f"{ctx}: expected {step['error']}, got {result!r}"
            assert result == "done", f"{ctx}: result {result!r}"
            return
        assert step.get("error") == error.code, f"{ctx}: error {error.code}: {error}"
        assert isinstance(error, _BY_CODE[error.code]), f"{ctx}: class {type(error)}"
        self.remote(ctx, step, error)
        if "message" in step:
            assert str(error) == step["message"], f"{ctx}: message {str(error)!r}"
        if error.code == "declined":
            assert isinstance(error.__cause__, peerlb.Declined), f"{ctx}: cause"
        elif script and script[len(peers) - 1].startswith("failure"):
            # The final error chains the last attempt's exception.
            assert isinstance(error.__cause__, RuntimeError), f"{ctx}: cause"


def run_scenario(path: Path, mode: str) -> None:
    scenario = json.loads(path.read_text())
    run = Run(path.name, mode)
    try:
        for i, step in enumerate(scenario["steps"]):
            run.step(f"step {i}", step)
    finally:
        run.close()
