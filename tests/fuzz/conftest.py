from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.gateway.cluster import Cluster, server_env

# Deterministic enough for CI: the same examples every run, none remembered between runs.
settings.register_profile("tocsin-fuzz", deadline=None, database=None, derandomize=True)


@pytest.fixture(scope="package")
def cluster(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One gateway and one dispatcher, real PostgreSQL and Redis behind them."""
    # Fuzzed sockets send frames back to back; the rate limit has its own tests.
    env = server_env(database_url, redis_url, TOCSIN_WS_RATE="1000", TOCSIN_WS_BURST="1000")
    cluster = Cluster(env, tmp_path_factory.mktemp("fuzz")).start(gateways=1)
    yield cluster
    cluster.stop()
