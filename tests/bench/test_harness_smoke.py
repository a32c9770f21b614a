"""`make bench` must not rot: its self-check mode (a few hundred frames through each system,
a few seconds) delivers frames and writes results with every key. Never a speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT


def test_self_check_delivers_and_reports(tmp_path: Path, database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--self-check", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    for key in ("meta", "live", "idle", "dispatcher", "ratios", "missing"):
        assert key in results
    assert set(results["live"]) == {"limit", "floor", "tocsin"}
    for name, live in results["live"].items():
        steps = [*live["ladder"], *live["saturation_steps"], *live["half_steps"]]
        assert sum(step["received"] for step in steps) > 0, name
        assert live["half_load_lost"] == 0, name
        assert live["client_stats"]["gaps"] == 0, name
        assert {"saturation_per_s", "p50_ms", "p99_ms"} <= set(live), name
    for name, idle in results["idle"].items():
        assert idle["connected"] == idle["sockets"], name
    assert results["dispatcher"]["singles"]["sent"] > 0
    assert results["dispatcher"]["bulk"]["status"] == 201
    assert (tmp_path / "latest.md").read_text().startswith("Measured")


@pytest.mark.timeout(300)
def test_self_check_runs_the_full_scenarios_tiny(tmp_path: Path, database_url: str) -> None:
    """`make bench FULL=1`'s extra scenarios (4 tabs per user, end to end, the reconnect storm,
    one user resuming, `tocsin gateway --processes 2`) at a few hundred frames: none lost."""
    env = {**os.environ, "DATABASE_URL": database_url}
    args = ["--self-check", "--extras", "--systems", "tocsin", "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert set(results["live"]) == {"tocsin", "tocsin-4tabs", "tocsin-e2e", "tocsin-2proc"}
    for name, live in results["live"].items():
        assert live["half_load_lost"] == 0, name
        assert live["client_stats"]["gaps"] == 0, name
    assert results["live"]["tocsin-2proc"]["pinned"] is False
    storm, deep = results["resume"]["storm"], results["resume"]["one_user"]
    assert storm["sent"] > 0 and storm["lost"] == 0 and storm["gaps"] == 0
    assert deep["notifications"] > 0 and deep["lost"] == 0
