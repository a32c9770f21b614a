"""The CLI runs with a clean Tocsin environment: nothing inherited from the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support.processes import ROOT


def clean_environ(**extra: str) -> dict[str, str]:
    """os.environ without DATABASE_URL, REDIS_URL or any TOCSIN_* variable, plus `extra`."""
    keep = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL") and not name.startswith("TOCSIN_")
    }
    return {**keep, **extra}


def tocsin(
    *args: str, env: Mapping[str, str], cwd: Path = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m tocsin ARGS` in a child process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tocsin", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """In-process runs of `tocsin.cli.main` see a clean environment and an empty data folder."""
    for name in list(os.environ):
        if name in ("DATABASE_URL", "REDIS_URL") or name.startswith("TOCSIN_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv("TOCSIN_DATA_DIR", str(data))
    return data
