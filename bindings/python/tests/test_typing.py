"""The typed usage file runs (mypy --strict and stubtest run from `make test-python`)."""

from typed_usage import async_usage, sync_usage

import asyncio


def test_typed_usage_runs() -> None:
    assert sync_usage() == ["a:1", "b:2"]
    assert asyncio.run(async_usage()) == "x:1"
