"""N gateway processes and a dispatcher on loopback, stopped by PID when the test ends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import tocsin_client
from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port

ALLOWED_ORIGIN = "http://app.example"


@dataclass
class Cluster:
    env: dict[str, str]
    log_dir: Path
    gateways: list[ServerProcess] = field(default_factory=list)
    dispatcher: ServerProcess | None = None

    def start_gateway(self, index: int, port: int | None = None) -> ServerProcess:
        port = port or free_port()
        env = {
            **self.env,
            "TOCSIN_GATEWAY_PORT": str(port),
            "TOCSIN_NODE_ID": f"gw{index}",
            "TOCSIN_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
        }
        return spawn(["gateway"], env, port, self.log_dir)

    def start(self, gateways: int) -> Cluster:
        self.gateways = [self.start_gateway(i) for i in range(gateways)]
        port = free_port()
        env = {**self.env, "TOCSIN_DISPATCHER_PORT": str(port)}
        self.dispatcher = spawn(["dispatcher"], env, port, self.log_dir)
        return self

    def stop(self) -> None:
        for server in [*self.gateways, *([self.dispatcher] if self.dispatcher else [])]:
            server.terminate()

    def ws_url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.gateways[index].port}/v1/ws"

    def ws_urls(self, first: int = 0) -> list[str]:
        n = len(self.gateways)
        return [self.ws_url((first + i) % n) for i in range(n)]

    def client(self) -> tocsin_client.AsyncClient:
        assert self.dispatcher is not None
        return tocsin_client.AsyncClient(self.dispatcher.url, PRODUCER_KEY, timeout=10)


def server_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """What every Tocsin process a test starts needs, with `extra` settings on top."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
        **extra,
    }


def token(user_id: str, ttl: int = 600) -> str:
    return tocsin_client.user_token(user_id, JWT_SECRET, ttl=ttl)


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"
