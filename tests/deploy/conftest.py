from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.deploy import stack
from tests.deploy.stack import Service


@pytest.fixture(scope="package")
def deploy_env(database_url: str, redis_url: str) -> dict[str, str]:
    """tests/conftest.py's env_base for fixtures wider than one test."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
    }


@dataclass
class Pair:
    gateway: Service
    dispatcher: Service


@pytest.fixture(scope="package")
def pair(deploy_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """One gateway and one dispatcher with separate metrics listeners. Tests here only read
    them, except test_prometheus.py, which holds sockets and sends."""
    logs = tmp_path_factory.mktemp("pair")
    started: list[Service] = []
    try:
        started.append(stack.start("gateway", "gw-pair", deploy_env, logs))
        started.append(stack.start("dispatcher", "dp-pair", deploy_env, logs))
        yield Pair(*started)
    finally:
        stack.stop(started)


@pytest.fixture(scope="package")
def worker(
    deploy_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """One fallback worker (no SMTP or VAPID: it cancels those jobs), on its metrics listener."""
    logs = tmp_path_factory.mktemp("worker")
    service = stack.start("worker", "wk-deploy", deploy_env, logs)
    try:
        yield service
    finally:
        stack.stop([service])
