"""Publishes committed notifications to their users' Redis channels, at most once, bounded in time.

Live pub/sub is best effort: a frame that cannot be published is counted and logged, and the
notification reaches the user from the store's backlog when their client reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dispatcher import metrics
from shared import frames, keys
from shared.models import Stored

logger = logging.getLogger("tocsin.dispatcher.publisher")

# Frames sent per pipeline round trip: bounds the bytes held for a large fan-out.
CHUNK_SIZE = 500


class Publisher:
    def __init__(self, redis: aioredis.Redis, timeout: float) -> None:
        self.redis = redis
        self.timeout = timeout

    async def publish(self, stored: Sequence[Stored]) -> int:
        """Publish each new notification (not replays); never raises for Redis, never hangs."""
        fresh = [s.notification for s in stored if s.created]
        published = 0
        try:
            async with asyncio.timeout(self.timeout):
                for start in range(0, len(fresh), CHUNK_SIZE):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for notification in fresh[start : start + CHUNK_SIZE]:
                            channel = keys.user_channel(notification.user_id)
                            pipe.publish(channel, frames.new_notification(notification))
                        published += len(await pipe.execute())
        except (RedisError, OSError, TimeoutError) as exc:
            lost = len(fresh) - published
            metrics.PUBLISH_FAILURES.inc(lost)
            metrics.BACKEND_ERRORS.labels(backend="redis").inc()
            logger.warning(
                "published %d of %d frames; %d left to the backlog: %r",
                published,
                len(fresh),
                lost,
                exc,
            )
        return published
