"""The CLI runs with a clean Tocsin environment: nothing inherited from the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
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


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder for an embedded PostgreSQL, outside pytest's base temp folder.

    Running as root, PostgreSQL runs as the `pgserver` user and must traverse the folder's
    parents; pytest (in any concurrent session) resets its base folder to mode 700.
    """
    folder = Path(tempfile.mkdtemp(prefix="tocsin-cli-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
