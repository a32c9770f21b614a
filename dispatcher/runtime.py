"""The dispatcher's live resources (PostgreSQL pool, Redis client and the broker publishing
through it), opened and closed together. The dispatcher only publishes: it never subscribes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from dispatcher import metrics
from dispatcher.outbox import Outbox
from dispatcher.publisher import Publisher
from shared.broker import RedisBroker
from shared.config import DispatcherSettings
from shared.http import probe_postgres, probe_redis
from shared.metrics import listener
from shared.repository import STORE_ERRORS, Repository, open_pool

PUBLISH_TIMEOUT = 1.0  # seconds a request may spend publishing before leaving it to the backlog
REDIS_SOCKET_TIMEOUT = 1.0
REDIS_HEALTH_CHECK_INTERVAL = 15  # seconds idle before a connection is PINGed on reuse


@dataclass(frozen=True)
class Runtime:
    settings: DispatcherSettings
    repository: Repository
    publisher: Publisher
    outbox: Outbox

    @property
    def node(self) -> str:
        return self.settings.node_id

    @property
    def pool(self) -> asyncpg.Pool:
        return self.repository.pool

    @property
    def redis(self) -> aioredis.Redis:
        return self.publisher.redis

    async def ready(self) -> dict[str, str]:
        """'ok' or the reason each backend is down, checked concurrently and bounded in time."""
        postgres, redis = await asyncio.gather(probe_postgres(self.pool), probe_redis(self.redis))
        return {"postgres": postgres, "redis": redis}


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
    broker = RedisBroker.publishing(redis)
    repository = Repository(pool)
    publisher = Publisher(redis, PUBLISH_TIMEOUT, broker)
    outbox = Outbox(
        repository, publisher, delay=settings.outbox_delay, interval=settings.outbox_interval
    )
    runtime = Runtime(settings, repository, publisher, outbox)
    metrics.DB_POOL.watch(pool)
    tasks = [
        asyncio.create_task(metrics.keep_ready(runtime.ready)),
        asyncio.create_task(outbox.run()),
    ]
    try:
        with listener(metrics.REGISTRY, settings.metrics_host, settings.metrics_port):
            yield runtime
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Marks still queued would only cost a second publish; save it when the store answers.
        with contextlib.suppress(*STORE_ERRORS):
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await outbox.flush_marks()
        metrics.DB_POOL.forget(pool)
        await broker.close()
        await redis.aclose()
        await pool.close()
