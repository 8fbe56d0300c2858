"""Every shared conformance scenario, replayed with blocking and with asyncio choose."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_runner import scenario_files, run_scenario

FILES = scenario_files()


def test_scenarios_found() -> None:
    # The same floor as the Rust runner: a missing or moved folder must fail, not pass.
    assert len(FILES) >= 40, f"found only {len(FILES)} scenarios"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path, mode: str) -> None:
    run_scenario(path, mode)
