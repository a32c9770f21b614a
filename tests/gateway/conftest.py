from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.gateway.cluster import Cluster


@pytest.fixture(scope="module")
def cluster(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Three gateway nodes and one dispatcher, shared by a module's tests (users differ)."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
        "TOCSIN_PRESENCE_TTL": "3",
        "TOCSIN_JWT_LEEWAY": "1",
    }
    cluster = Cluster(env, tmp_path_factory.mktemp("cluster")).start(gateways=3)
    yield cluster
    cluster.stop()
