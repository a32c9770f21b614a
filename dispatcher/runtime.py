"""The dispatcher's live resources (PostgreSQL pool, Redis client), opened and closed together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from dispatcher import metrics
from dispatcher.publisher import Publisher
from shared.config import DispatcherSettings, StoreSettings
from shared.metrics import listener
from shared.repository import Repository, create_pool

logger = logging.getLogger("tocsin.dispatcher")

PUBLISH_TIMEOUT = 1.0  # seconds a request may spend publishing before leaving it to the backlog
REDIS_SOCKET_TIMEOUT = 1.0
REDIS_HEALTH_CHECK_INTERVAL = 15  # seconds idle before a connection is PINGed on reuse
PROBE_TIMEOUT = 2.0
DB_CONNECT_TIMEOUT = 5.0

# Errors that mean "the store cannot be reached", as opposed to a bug in a query.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)


@dataclass(frozen=True)
class Runtime:
    settings: DispatcherSettings
    pool: asyncpg.Pool
    repository: Repository
    redis: aioredis.Redis
    publisher: Publisher

    async def probe(self) -> dict[str, str]:
        """'ok' or the reason each backend is down, checked concurrently and bounded in time."""
        postgres, redis = await asyncio.gather(self._probe_postgres(), self._probe_redis())
        return {"postgres": postgres, "redis": redis}

    async def _probe_postgres(self) -> str:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self.pool.fetchval("SELECT 1")
        except STORE_ERRORS as exc:
            return _down("postgres", exc)
        return "ok"

    async def _probe_redis(self) -> str:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self.redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            return _down("redis", exc)
        return "ok"


def _down(backend: str, exc: BaseException) -> str:
    logger.warning("readiness: %s is down: %r", backend, exc)
    return f"down: {type(exc).__name__}"


async def open_pool(store: StoreSettings) -> asyncpg.Pool:
    """The pool; empty (connecting on first use) if PostgreSQL is down at start-up."""
    # So the process still starts, reports not ready, and recovers by itself.
    try:
        return await create_pool(
            store.database_url, store.pool_min, store.pool_max, DB_CONNECT_TIMEOUT
        )
    except STORE_ERRORS as exc:
        logger.warning("PostgreSQL unreachable at start-up (%r); answering 503 until it is", exc)
        return await create_pool(store.database_url, 0, store.pool_max, DB_CONNECT_TIMEOUT)


def open_redis(url: str) -> aioredis.Redis:
    """A client that fails fast (one immediate retry) instead of stalling a request."""
    return aioredis.Redis.from_url(
        url,
        health_check_interval=REDIS_HEALTH_CHECK_INTERVAL,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 1),
    )


@asynccontextmanager
async def running(settings: DispatcherSettings) -> AsyncIterator[Runtime]:
    pool = await open_pool(settings.store)
    redis = open_redis(settings.store.redis_url)
    runtime = Runtime(
        settings=settings,
        pool=pool,
        repository=Repository(pool),
        redis=redis,
        publisher=Publisher(redis, PUBLISH_TIMEOUT),
    )
    metrics.DB_POOL.watch(pool)
    refresh = asyncio.create_task(metrics.keep_ready(runtime.probe))
    try:
        with listener(metrics.REGISTRY, settings.metrics_host, settings.metrics_port):
            yield runtime
    finally:
        refresh.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresh
        metrics.DB_POOL.forget(pool)
        await redis.aclose()
        await pool.close()
