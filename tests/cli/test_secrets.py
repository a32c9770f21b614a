"""Secrets of the embedded default: generated once, owner-only, reused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shared.config import ConfigError
from tocsin import secrets_store
from tocsin.datadir import DataDirLock
from tocsin.embedded import EmbeddedError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_owner_only_then_reused(tmp_path: Path) -> None:
    first, generated = secrets_store.load_or_create(tmp_path)
    assert generated
    assert mode(first.path) == 0o600 and mode(first.path.parent) == 0o700
    assert len(first.producer_key) >= 16 and len(first.jwt_secret) >= 32
    again, generated = secrets_store.load_or_create(tmp_path)
    assert not generated and again == first
    other, _ = secrets_store.load_or_create(tmp_path / "elsewhere")
    assert other.producer_key != first.producer_key and other.jwt_secret != first.jwt_secret


def test_load_tightens_a_file_readable_by_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created, _ = secrets_store.load_or_create(tmp_path)
    created.path.chmod(0o644)
    assert secrets_store.load(tmp_path) == created
    assert mode(created.path) == 0o600
    assert "readable by others" in capsys.readouterr().err


def test_absent_and_damaged(tmp_path: Path) -> None:
    assert secrets_store.load(tmp_path) is None
    created, _ = secrets_store.load_or_create(tmp_path)
    created.path.write_text("TOCSIN_PRODUCER_KEYS=abcdefghijklmnopqrstuvwxyz\n")
    with pytest.raises(ConfigError) as caught:
        secrets_store.load(tmp_path)
    assert caught.value.name == "TOCSIN_JWT_SECRET"


def test_one_owner_per_data_folder(tmp_path: Path) -> None:
    with DataDirLock(tmp_path), pytest.raises(EmbeddedError, match="in use by pid"):
        DataDirLock(tmp_path).acquire()
    with DataDirLock(tmp_path):  # released on exit
        pass
