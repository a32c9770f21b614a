"""A real gateway and dispatcher per test, started with `python -m tocsin`, stopped by PID."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port

POOL_MAX = 4  # TOCSIN_DB_POOL_MAX for the processes here: the pool gauge must report it


@dataclass
class Services:
    gateway: ServerProcess
    dispatcher: ServerProcess

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway.port}/v1/ws"


Start = Callable[..., ServerProcess]


@pytest.fixture
def start(env_base: dict[str, str], tmp_path: Path) -> Iterator[Start]:
    """start("gateway" | "dispatcher", **extra_env): one more process, stopped at the end."""
    started: list[ServerProcess] = []

    def run(service: str, **extra: str) -> ServerProcess:
        port = free_port()
        env = {
            **env_base,
            "TOCSIN_DB_POOL_MAX": str(POOL_MAX),
            f"TOCSIN_{service.upper()}_PORT": str(port),
            **extra,
        }
        server = spawn([service], env, port, tmp_path)
        started.append(server)
        return server

    yield run
    for server in started:
        server.terminate()


@pytest.fixture
def services(start: Start) -> Services:
    return Services(gateway=start("gateway"), dispatcher=start("dispatcher"))
