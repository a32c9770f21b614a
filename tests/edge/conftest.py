"""Fixtures of the edge tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder for an embedded PostgreSQL, outside pytest's base temp: as root, PostgreSQL
    runs as `pgserver` and must traverse the folder's parents (pytest keeps its base at 700)."""
    folder = Path(tempfile.mkdtemp(prefix="tocsin-edge-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
