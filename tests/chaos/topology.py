"""The servers of one scenario: N gateways and M dispatchers on loopback, an own Redis (and an
own PostgreSQL when the scenario restarts it), each Redis link through a TcpProxy it controls.
Everything here was started by this process and is stopped by PID."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import tocsin_client
from shared.migrate import migrate_url
from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port
from tests.support.tcpproxy import TcpProxy
from tocsin.embedded import EmbeddedServer, start_postgres, start_redis


@dataclass
class Shape:
    gateways: int = 3
    dispatchers: int = 2
    env: dict[str, str] = field(default_factory=dict)  # extra settings for every server
    own_postgres: bool = False


@dataclass
class Topology:
    folder: Path
    database_url: str
    redis: EmbeddedServer
    redis_port: int
    postgres: EmbeddedServer | None = None
    gateways: list[ServerProcess] = field(default_factory=list)
    dispatchers: list[ServerProcess] = field(default_factory=list)
    gateway_links: list[TcpProxy] = field(default_factory=list)  # gateway i -> Redis
    dispatcher_links: list[TcpProxy] = field(default_factory=list)  # dispatcher i -> Redis

    @property
    def ws_urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{g.port}/v1/ws" for g in self.gateways]

    def client(self, index: int) -> tocsin_client.AsyncClient:
        url = self.dispatchers[index].url
        return tocsin_client.AsyncClient(url, PRODUCER_KEY, timeout=5, retries=1, backoff=0.1)

    def restart_redis(self) -> None:
        self.redis = start_redis(self.folder, self.redis_port)

    def restart_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres = start_postgres(self.folder)

    def stop(self) -> None:
        servers = [*self.gateways, *self.dispatchers]
        with ThreadPoolExecutor(max(1, len(servers))) as pool:
            list(pool.map(_terminate, servers))
        for proxy in [*self.gateway_links, *self.dispatcher_links]:
            proxy.stop()
        self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def _terminate(server: ServerProcess) -> None:
    with contextlib.suppress(Exception):
        server.terminate(timeout=10)


def _env(database_url: str, redis_port: int, extra: dict[str, str]) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
        "TOCSIN_PRESENCE_TTL": "3",
        "TOCSIN_LOG_LEVEL": "WARNING",
        "TOCSIN_SHUTDOWN_GRACE": "1",
        **extra,
    }


async def start(shape: Shape, folder: Path, database_url: str) -> Topology:
    redis_port = free_port()
    redis = start_redis(folder, redis_port)
    topology = Topology(folder, database_url, redis, redis_port)
    try:
        if shape.own_postgres:
            topology.postgres = await asyncio.to_thread(start_postgres, folder)
            topology.database_url = topology.postgres.url
        await migrate_url(topology.database_url)
        await _spawn_all(topology, shape)
    except BaseException:
        topology.stop()
        raise
    return topology


def _spawn(role: str, env: dict[str, str], folder: Path) -> ServerProcess:
    """Start one server; a port picked free can be taken by another process before the bind
    (the machine is shared), so a failed start is tried again on another port."""
    for attempt in range(3):
        port = free_port()
        try:
            return spawn([role], {**env, f"TOCSIN_{role.upper()}_PORT": str(port)}, port, folder)
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _spawn_all(topology: Topology, shape: Shape) -> None:
    def linked(role: str, index: int) -> tuple[TcpProxy, dict[str, str]]:
        proxy = TcpProxy("127.0.0.1", topology.redis_port).start()
        env = _env(topology.database_url, proxy.port, shape.env)
        env["TOCSIN_NODE_ID"] = f"{role}{index}"
        return proxy, env

    jobs = []
    for i in range(shape.gateways):
        proxy, env = linked("gw", i)
        topology.gateway_links.append(proxy)
        jobs.append(asyncio.to_thread(_spawn, "gateway", env, topology.folder))
    for i in range(shape.dispatchers):
        proxy, env = linked("disp", i)
        topology.dispatcher_links.append(proxy)
        jobs.append(asyncio.to_thread(_spawn, "dispatcher", env, topology.folder))
    servers = await asyncio.gather(*jobs, return_exceptions=True)
    started = [s for s in servers if isinstance(s, ServerProcess)]
    topology.gateways = started[: shape.gateways]
    topology.dispatchers = started[shape.gateways :]
    failed = [s for s in servers if isinstance(s, BaseException)]
    if failed:
        raise failed[0]
