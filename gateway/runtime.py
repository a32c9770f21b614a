"""Everything one gateway node holds, started and stopped as one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random

import asyncpg
import redis.asyncio as aioredis

from gateway import metrics
from gateway.acks import AckBatcher
from gateway.hub import Hub
from gateway.presence import Presence
from gateway.readstate import ReadState
from gateway.settings import GatewaySettings
from gateway.store_batch import StoreBatch
from gateway.store_poll import StorePoll
from shared import serialization
from shared.broker import BrokerMetrics, RedisBroker
from shared.http import probe_postgres, probe_redis
from shared.repository import Repository, open_pool

logger = logging.getLogger("tocsin.gateway")

# The readiness probe's connections at most (where presence's connection goes, too); presence
# and the broker write on connections of their own.
REDIS_CONNECTIONS = 4


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.draining = False
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        s = self.settings
        self._pool = await open_pool(s.store)
        metrics.DB_POOL.watch(self._pool)
        self.repo = Repository(self._pool)
        # Sockets' reads (welcome, backlog, pong, counts) coalesced across sockets asking
        # together: a connect or reconnect storm costs a few queries, not a few per socket.
        self.store = StoreBatch(self.repo)
        # A burst of probes waits for a free connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            s.store.redis_url,
            max_connections=REDIS_CONNECTIONS,
            timeout=5,
            socket_connect_timeout=5,
            socket_timeout=5,
            health_check_interval=15,
        )
        self.redis = aioredis.Redis.from_pool(pool)
        self.presence = Presence(self.redis, s.node_id, s.presence_ttl, lambda: self.hub.users())
        # The node's one pub/sub link, and its publishes (read-state events, probes).
        self.broker = RedisBroker(
            s.store.redis_url,
            node_id=s.node_id,
            on_message=lambda user, data: self.hub.deliver(user, data),
            users=lambda: self.hub.users(),
            on_recovered=lambda: self.hub.resync_all(),
            metrics=BrokerMetrics(
                reconnects=metrics.REDIS_RECONNECTS,
                errors=metrics.BACKEND_ERRORS.labels("redis"),
                channels=metrics.PUBSUB_CHANNELS,
            ),
        )
        self.hub = Hub(self.broker, self.presence)
        self.acks = AckBatcher(self.repo, s.ack_flush_interval)
        self.read_state = ReadState(self.repo, self.broker)
        # While the pub/sub link is down or silent, the node's tabs are fed from the store.
        self.store_poll = StorePoll(self.repo, self.hub, self.broker.status, s.store_poll_interval)
        for job in (self.broker.run(), self.presence.heartbeat(), self.acks.run()):
            self._tasks.append(asyncio.create_task(job))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.broker.connected.wait(), 5)
        for job in (metrics.keep_ready(self), self.store_poll.run()):
            self._tasks.append(asyncio.create_task(job))
        logger.info("gateway node %s started", s.node_id)

    def next_connection_id(self) -> str:
        return f"{self.settings.node_id}/{next(self._ids)}"

    async def drain(self) -> None:
        """SIGTERM: tell every client to reconnect elsewhere, spread over a jittered window."""
        self.draining = True
        spread_ms = int(self.settings.reconnect_spread * 1000)
        for conn in self.hub.connections():
            delay = random.randint(0, spread_ms)
            conn.send_json(serialization.dumps({"type": "reconnect", "delayMs": delay}))
            conn.close(1012, "service restart")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.hub.empty.wait(), self.settings.shutdown_grace)
        logger.info("drained; %d sockets left at deadline", self.hub.count())

    async def stop(self) -> None:
        await self.acks.flush()
        await self.presence.withdraw()
        self.presence.close()
        for task in self._tasks:
            task.cancel()
        # Bounded: a redis-py read can sit on its cancellation (seen when the port was taken).
        _, stuck = await asyncio.wait(self._tasks, timeout=2)
        if stuck:
            logger.warning("%d background tasks did not stop; exiting anyway", len(stuck))
        await self.broker.close()
        await self.redis.aclose()
        await self.store.close()
        if self._pool is not None:
            metrics.DB_POOL.forget(self._pool)
            await self._pool.close()

    async def ready(self) -> dict[str, str]:
        """'ok' or why not, per backend: PostgreSQL, Redis, and this node's pub/sub link (not
        ready while it is down or silent: new sockets go elsewhere, held ones are polled)."""
        postgres, redis = await asyncio.gather(
            probe_postgres(self.repo.pool), probe_redis(self.redis)
        )
        return {"postgres": postgres, "redis": redis, "pubsub": self.broker.status()}
