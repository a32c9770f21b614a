"""The local data folder of the embedded default (`TOCSIN_DATA_DIR`, `.data` by default),
and the lock that lets one `tocsin run` at a time own the servers kept in it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO

DEFAULT_DATA_DIR = ".data"


def data_dir(environ: Mapping[str, str]) -> Path:
    """TOCSIN_DATA_DIR (`--data-dir` sets it), else `.data` in the current folder."""
    return Path(environ.get("TOCSIN_DATA_DIR", "").strip() or DEFAULT_DATA_DIR).expanduser()


class DataDirLock:
    """An exclusive lock on the folder, released when the process exits, however it exits.

    The holder owns the embedded servers: it adopts a PostgreSQL left running by a killed
    predecessor and stops it on the way out, which would be wrong while another holder used it.
    """

    def __init__(self, folder: Path) -> None:
        from tocsin.embedded import make_data_dir  # loads redis: only for commands that lock

        self.path = make_data_dir(folder) / "tocsin.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        from tocsin.embedded import EmbeddedError

        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise EmbeddedError(
                f"{self.path.parent} is in use by pid {holder} (a running `tocsin run`?)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
