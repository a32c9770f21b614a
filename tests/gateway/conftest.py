from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.cluster import Cluster, server_env


@pytest.fixture(scope="module")
def cluster(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Three gateway nodes and one dispatcher, shared by a module's tests (users differ)."""
    env = server_env(database_url, redis_url, TOCSIN_PRESENCE_TTL="3", TOCSIN_JWT_LEEWAY="1")
    cluster = Cluster(env, tmp_path_factory.mktemp("cluster")).start(gateways=3)
    yield cluster
    cluster.stop()
