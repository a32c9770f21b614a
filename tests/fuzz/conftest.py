from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.gateway.cluster import Cluster

# Deterministic enough for CI: the same examples every run, none remembered between runs.
settings.register_profile("tocsin-fuzz", deadline=None, database=None, derandomize=True)


@pytest.fixture(scope="package")
def cluster(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One gateway and one dispatcher, real PostgreSQL and Redis behind them."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
        # Fuzzed sockets send frames back to back; the rate limit has its own tests.
        "TOCSIN_WS_RATE": "1000",
        "TOCSIN_WS_BURST": "1000",
    }
    cluster = Cluster(env, tmp_path_factory.mktemp("fuzz")).start(gateways=1)
    yield cluster
    cluster.stop()
