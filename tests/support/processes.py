"""Start Tocsin server processes for tests and stop exactly those, by PID."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared import children

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the node dies without any clean-up."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self, timeout: float = 20) -> int:
        return children.stop(self.process, timeout)


def spawn(
    args: list[str],
    env: Mapping[str, str],
    port: int,
    log_dir: Path,
    ready_path: str = "/healthz",
    timeout: float = 30,
) -> ServerProcess:
    """Run `python -m tocsin ARGS` and wait until GET ready_path answers 200."""
    log_path = log_dir / f"{args[0]}-{port}.log"
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tocsin", *args],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, port, log_path)
    try:
        wait_ready(process, server.url + ready_path, timeout, str(args), server.log)
    except RuntimeError:
        server.kill()
        raise
    return server


def wait_ready(
    process: subprocess.Popen[bytes],
    url: str,
    timeout: float,
    name: str,
    log: Callable[[], str],
) -> None:
    """Until GET url answers 200; RuntimeError with the log if the process exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} not ready after {timeout}s:\n{log()}")
