"""Processes under test: spawned pinned to a core (`taskset`), measured (CPU, RSS) through
psutil, stopped by PID. The load client is a child too, spoken to in JSON lines."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from shared import children

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE = 0  # every server under test
LOAD_CORE = 1  # the load client, the publisher (this process) and Redis


def two_cores() -> bool:
    return (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None


def pinned(core: int | None, args: list[str]) -> list[str]:
    """taskset execs the command, so the child's PID is the server's. `None`: every core (a
    child would otherwise inherit this process's pinning to the load core)."""
    cores = str(core) if core is not None else f"0-{(os.cpu_count() or 1) - 1}"
    return ["taskset", "-c", cores, *args] if two_cores() else args


def pin_self() -> None:
    if two_cores():
        os.sched_setaffinity(0, {LOAD_CORE})


def pin_pid(pid: int, core: int) -> None:
    if two_cores():
        os.sched_setaffinity(pid, {core})


def core_times() -> list[tuple[float, float]]:
    """(busy, total) CPU seconds of each core so far, whoever used them."""
    out = []
    for times in psutil.cpu_times(percpu=True):
        total = sum(times)
        out.append((total - times.idle - getattr(times, "iowait", 0.0), total))
    return out


def core_busy(before: list[tuple[float, float]]) -> list[float]:
    """Each core's busy share since `before` (the server's own share plus everyone else's)."""
    return [
        (busy - b0) / max(total - t0, 1e-9)
        for (busy, total), (b0, t0) in zip(core_times(), before, strict=True)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> None:
    """Children inherit it: 20,000 sockets need more than the usual 1,024 descriptors."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65_536)), hard))


class Measured:
    """A helper process on the load core whose CPU counts as load (Redis)."""

    def __init__(self, pid: int) -> None:
        self.ps = psutil.Process(pid)

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)


LOAD_PROCESSES: list[Measured] = []  # besides the load client and this process


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    tree: bool = False  # a supervisor: its children count too
    ps: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.ps = psutil.Process(self.process.pid)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def _processes(self) -> list[psutil.Process]:
        return [self.ps, *self.ps.children(recursive=True)] if self.tree else [self.ps]

    def cpu_seconds(self) -> float:
        total = 0.0
        for ps in self._processes():
            try:
                times = ps.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def rss(self) -> int:
        total = 0
        for ps in self._processes():
            try:
                total += ps.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def stop(self, timeout: float = 30) -> None:
        children.stop(self.process, timeout)


def spawn(
    name: str,
    args: list[str],
    env: Mapping[str, str],
    port: int,
    log_dir: Path,
    *,
    core: int | None = SERVER_CORE,  # None: every core
    ready_url: str | None = None,
    timeout: float = 30,
    tree: bool = False,
) -> Server:
    log_path = log_dir / f"{name}-{port}.log"
    command = pinned(core, args)
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(name, process, port, log_path, tree)
    try:
        _wait_ready(server, ready_url, timeout)
    except RuntimeError:
        server.stop(5)
        raise
    return server


def _wait_ready(server: Server, ready_url: str | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = server.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{log}")
        try:
            if ready_url is None:
                with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                    return
            elif httpx.get(ready_url, timeout=1).status_code == 200:
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {timeout}s")


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


class LoadClient:
    """The picows load client (bench/loadclient.py), pinned to the load core."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ps = psutil.Process(process.pid)

    @classmethod
    async def start(cls) -> LoadClient:
        args = pinned(LOAD_CORE, python("-m", "bench.loadclient"))
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        return cls(process)

    async def call(self, name: str, wait: float = 120, **fields: Any) -> dict[str, Any]:
        """Send one command; its answer within `wait` seconds."""
        assert self.process.stdin is not None and self.process.stdout is not None
        cmd = {"cmd": name, **fields}
        self.process.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self.process.stdin.drain()
        async with asyncio.timeout(wait):
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"load client exited ({self.process.returncode}) on {cmd['cmd']}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.write(b'{"cmd": "exit"}\n')
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
