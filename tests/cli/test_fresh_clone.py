"""Acceptance: `tocsin run` from a fresh clone with no services configured; a `tocsin send`
succeeds, and the notification is still in the embedded database after a restart.

The clone runs on this venv's Python (PYTHONPATH and cwd point at the clone, so its code is
what runs) instead of reinstalling: `make run` is `make install` plus exactly this command.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.cli.conftest import clean_environ, tocsin
from tests.support.processes import ROOT
from tests.support.services import free_port
from tocsin.embedded import is_running, wait_gone

START_TIMEOUT = 90.0
STOP_TIMEOUT = 40.0


class Node:
    """One `tocsin run` of the clone, its output in a log file."""

    def __init__(self, clone: Path, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.data = Path(env["TOCSIN_DATA_DIR"])
        self.dispatcher = f"http://127.0.0.1:{env['TOCSIN_DISPATCHER_PORT']}"
        self.log_path = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tocsin", "run"],
                cwd=clone,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_running(self) -> None:
        """Until the banner is out (both services ready) and the dispatcher is ready."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"tocsin run exited:\n{self.log()}"
            if "Tocsin is running" in self.log() and _ready(self.dispatcher + "/readyz"):
                return
            time.sleep(0.2)
        raise AssertionError(f"tocsin run not ready after {START_TIMEOUT}s:\n{self.log()}")

    def pids(self) -> list[int]:
        """Every process `tocsin run` started: services, Redis, and the PostgreSQL postmaster."""
        found = _children(self.process.pid)
        for pidfile in (
            self.data / "postgres" / "postmaster.pid",
            self.data / "redis" / "redis.pid",
        ):
            found.append(int(pidfile.read_text().split()[0]))
        return found

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_TIMEOUT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _socket_url(data: Path) -> str:
    """The embedded database's URL, from the socket folder recorded in postmaster.pid."""
    socket_dir = (data / "postgres" / "postmaster.pid").read_text().splitlines()[4]
    return f"postgresql://postgres:@/postgres?host={socket_dir}"


async def _stored(url: str, user: str) -> list[tuple[int, str]]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT seq, title FROM tocsin_notifications WHERE user_id = $1 ORDER BY seq", user
        )
    finally:
        await conn.close()
    return [(row["seq"], row["title"]) for row in rows]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git is required for the fresh-clone test (.ci/run installs it)")
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=60)
    return target


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:  # a failed assertion must not leave servers behind
        leftovers = [pid for pid in _safe_pids(node) if is_running(pid)]
        node.kill()
        for pid in leftovers:
            if is_running(pid):
                os.kill(pid, signal.SIGTERM)
                wait_gone(pid, 10)


def _safe_pids(node: Node) -> list[int]:
    try:
        return node.pids()
    except (OSError, IndexError, ValueError):
        return []


@pytest.mark.timeout(300)
def test_make_run_from_a_fresh_clone_keeps_notifications_across_restarts(
    clone: Path, tmp_path: Path, scratch: Path, nodes: list[Node]
) -> None:
    env = clean_environ(
        PYTHONPATH=os.pathsep.join([str(clone), str(clone / "client")]),
        PYTHONUNBUFFERED="1",
        TOCSIN_DATA_DIR=str(scratch / "data"),
        TOCSIN_GATEWAY_PORT=str(free_port()),
        TOCSIN_DISPATCHER_PORT=str(free_port()),
    )
    user = "fresh-clone-user"
    send = ["send", "--user", user, "--type", "message:received", "--title"]
    send_env = {**env, "TOCSIN_DISPATCHER_URL": f"http://127.0.0.1:{env['TOCSIN_DISPATCHER_PORT']}"}

    first = Node(clone, env, tmp_path / "run-1.log")
    nodes.append(first)
    first.wait_running()
    assert "secrets      generated" in first.log()
    sent = tocsin(*send, "Before the restart", env=send_env, cwd=clone)
    assert sent.returncode == 0, sent.stderr
    assert f"user={user}  seq=1" in sent.stdout
    started = first.pids()
    assert first.terminate() == 0, first.log()
    assert all(wait_gone(pid, 10) for pid in started), f"left running: {started}\n{first.log()}"

    second = Node(clone, env, tmp_path / "run-2.log")
    nodes.append(second)
    second.wait_running()
    assert "secrets      kept" in second.log()
    again = tocsin(*send, "After the restart", env=send_env, cwd=clone)
    assert again.returncode == 0, again.stderr
    assert f"user={user}  seq=2" in again.stdout  # the sequence continued: seq 1 survived
    stored = asyncio.run(_stored(_socket_url(second.data), user))
    assert stored == [(1, "Before the restart"), (2, "After the restart")]
    started = second.pids()
    assert second.terminate() == 0, second.log()
    assert all(wait_gone(pid, 10) for pid in started), f"left running: {started}\n{second.log()}"
