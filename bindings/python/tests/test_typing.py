"""The typed usage file runs (mypy --strict and stubtest run from `make test-python`)."""

from typed_usage import (
    async_retry_usage,
    async_session_usage,
    async_usage,
    resilience_usage,
    session_usage,
    sync_usage,
)

import asyncio


def test_typed_usage_runs() -> None:
    assert sync_usage() == ["a:1", "b:2"]
    assert asyncio.run(async_usage()) == "x:1"
    seen = resilience_usage()
    assert seen[-1] == "retry-exhausted" and "disabled a:1 disabled by admin" in seen
    assert asyncio.run(async_retry_usage()) == "x:1x:1!"
    assert session_usage()[:3] == [
        "created 1 a:1 opened",
        "terminated 1 a:1 reset",
        "created 1 b:1 failover",
    ]
    assert asyncio.run(async_session_usage()) in ("x:1", "y:1")
