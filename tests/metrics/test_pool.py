"""The DB-pool gauges read a real asyncpg pool, including acquires waiting for a connection."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from shared.metrics import pool_collector
from shared.repository import create_pool


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def wait_for_value(registry: CollectorRegistry, name: str, value: float) -> None:
    async with asyncio.timeout(5):
        # Polling is right here: asyncpg signals no event when an acquire starts waiting.
        while sample(registry, name) != value:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_in_use_idle_max_and_waiting_follow_the_pool(database_url: str) -> None:
    registry = CollectorRegistry()
    collector = pool_collector(registry)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    collector.watch(pool)
    try:
        assert sample(registry, "tocsin_db_pool_max_connections") == 2
        assert sample(registry, "tocsin_db_pool_connections", state="idle") == 1
        assert sample(registry, "tocsin_db_pool_connections", state="in_use") == 0
        held = [await pool.acquire(), await pool.acquire()]
        assert sample(registry, "tocsin_db_pool_connections", state="in_use") == 2
        assert sample(registry, "tocsin_db_pool_connections", state="idle") == 0
        assert sample(registry, "tocsin_db_pool_waiting") == 0
        queries = [asyncio.create_task(pool.fetchval("SELECT $1::int", n)) for n in range(3)]
        await wait_for_value(registry, "tocsin_db_pool_waiting", 3)
        for conn in held:
            await pool.release(conn)
        assert await asyncio.gather(*queries) == [0, 1, 2]
        assert sample(registry, "tocsin_db_pool_waiting") == 0
        assert sample(registry, "tocsin_db_pool_connections", state="idle") == 2
    finally:
        collector.forget(pool)
        await pool.close()
    assert sample(registry, "tocsin_db_pool_max_connections") == 0


async def test_a_closed_pool_is_not_reported(database_url: str) -> None:
    registry = CollectorRegistry()
    collector = pool_collector(registry)
    pool = await create_pool(database_url, min_size=1, max_size=3)
    collector.watch(pool)
    await pool.close()
    assert sample(registry, "tocsin_db_pool_max_connections") == 0
    assert sample(registry, "tocsin_db_pool_connections", state="idle") == 0
