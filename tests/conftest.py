"""Fixtures against the real PostgreSQL and Redis (see tests/support/services.py)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from shared.config import JwtSettings, StoreSettings
from shared.migrate import migrate
from shared.repository import Repository, create_pool
from tests.support import services

PRODUCER_KEY = "test-producer-key-" + secrets.token_hex(8)
JWT_SECRET = "test-jwt-secret-" + secrets.token_hex(16)


@pytest.fixture(scope="session")
def database_url() -> str:
    url = services.database_url()

    async def fresh_schema() -> None:
        conn = await asyncpg.connect(url)
        try:
            # Every table a migration made, whatever migrations exist: start from none.
            tables = await conn.fetchval(
                "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables"
                " WHERE schemaname = current_schema() AND tablename LIKE 'tocsin\\_%'"
            )
            if tables:
                await conn.execute(f"DROP TABLE IF EXISTS {tables} CASCADE")
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(fresh_schema())
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.redis_url()


@pytest.fixture
def store_settings(database_url: str, redis_url: str) -> StoreSettings:
    return StoreSettings(database_url=database_url, redis_url=redis_url)


@pytest.fixture
def jwt_settings() -> JwtSettings:
    return JwtSettings(
        algorithm="HS256", secret=JWT_SECRET, public_key=None, audience="tocsin", issuer="tocsin"
    )


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=20)
    await pool.execute("TRUNCATE tocsin_notifications, tocsin_user_seq CASCADE")
    yield pool
    await pool.close()


@pytest.fixture
async def repo(pool: asyncpg.Pool) -> Repository:
    return Repository(pool)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def env_base(database_url: str, redis_url: str) -> Iterator[dict[str, str]]:
    """Environment for a Tocsin server process started by a test."""
    yield {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
    }
