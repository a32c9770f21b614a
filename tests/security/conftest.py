from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.gateway.cluster import Cluster

MAX_TTL = 3600  # TOCSIN_JWT_MAX_TTL of this package's gateways


@pytest.fixture(scope="package")
def cluster(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two gateways (Origin http://app.example, a maximum token lifetime) and a dispatcher."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
        "TOCSIN_JWT_MAX_TTL": str(MAX_TTL),
        "TOCSIN_JWT_LEEWAY": "1",
    }
    cluster = Cluster(env, tmp_path_factory.mktemp("security")).start(gateways=2)
    yield cluster
    cluster.stop()
