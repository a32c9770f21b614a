"""Tocsin services for the deploy tests: each with a node id and its own metrics listener,
started with tests/support/processes.py and stopped by PID."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

import tocsin_client
from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port

ROLES = {"gateway": "TOCSIN_GATEWAY", "dispatcher": "TOCSIN_DISPATCHER", "worker": "TOCSIN_WORKER"}


@dataclass
class Service:
    role: str
    node: str
    server: ServerProcess
    metrics_port: int

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def metrics(self) -> str:
        response = httpx.get(self.metrics_url, timeout=5)
        response.raise_for_status()
        return response.text


def start(role: str, node: str, env: dict[str, str], log_dir: Path) -> Service:
    """`tocsin ROLE` on free loopback ports: the service port and a separate metrics port
    (the worker has only the second, which serves its /healthz and /readyz too)."""
    metrics_port = free_port()
    port = metrics_port if role == "worker" else free_port()
    prefix = ROLES[role]
    service_env = {
        **env,
        f"{prefix}_METRICS_PORT": str(metrics_port),
        "TOCSIN_NODE_ID": node,
        "TOCSIN_RECONNECT_SPREAD": "1",
        "TOCSIN_SHUTDOWN_GRACE": "5",
    }
    if role != "worker":
        service_env[f"{prefix}_PORT"] = str(port)
    return Service(role, node, spawn([role], service_env, port, log_dir), metrics_port)


def stop(services: list[Service]) -> None:
    for service in services:
        service.server.terminate()


def token(user_id: str) -> str:
    return tocsin_client.user_token(user_id, JWT_SECRET, ttl=600)


def new_user() -> str:
    return f"deploy-{uuid.uuid4().hex[:12]}"


def producer(base_url: str) -> tocsin_client.AsyncClient:
    return tocsin_client.AsyncClient(base_url, PRODUCER_KEY, timeout=10)


def sample_value(exposition: str, name: str, labels: str = "") -> float:
    """One sample's value from a text exposition; 0 when the series is absent."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in exposition.splitlines():
        series, _, value = line.rpartition(" ")
        if series == wanted:
            return float(value)
    return 0.0
