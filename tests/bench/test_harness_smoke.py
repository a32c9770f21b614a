"""`make bench` must not rot: its self-check mode (a few hundred frames through each system,
a few seconds) delivers frames and writes results with every key. Never a speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
