"""Publishes committed notifications to their users through the broker, bounded in time.

The only code in the dispatcher that publishes. Each goes out as an envelope (shared/envelope.py):
its seq and commit time in a routing line, then the notification:new frame, so gateways route
without decoding JSON. A notification that cannot be published stays unpublished in the store,
and the outbox (dispatcher/outbox.py) publishes it again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dispatcher import metrics
from shared import envelope, frames, serialization
from shared.broker import Broker, BrokerUnavailable, RedisBroker
from shared.models import Notification

logger = logging.getLogger("tocsin.dispatcher.publisher")

# Messages sent per pipeline round trip: bounds the bytes held for a large fan-out.
CHUNK_SIZE = 500

REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
PUBLISH_FAILURES: tuple[type[BaseException], ...] = (BrokerUnavailable, TimeoutError)


class PublishFailed(Exception):
    """Redis refused, dropped or timed out a publish; `published` frames went out before it."""

    def __init__(self, published: int, cause: BaseException) -> None:
        super().__init__(published, cause)
        self.published = published
        self.cause = cause

    def __str__(self) -> str:
        return f"published {self.published} frames, then Redis failed: {self.cause!r}"


class Publisher:
    def __init__(self, redis: aioredis.Redis, timeout: float, broker: Broker | None = None) -> None:
        """Publishes through `broker`, by default one publishing through `redis`."""
        self.redis = redis  # reachable() pings it
        self.timeout = timeout
        self.broker = broker if broker is not None else RedisBroker.publishing(redis)

    async def publish(self, notifications: Sequence[Notification]) -> int:
        """Publish in order; how many went out. Never raises for Redis, never hangs: what is
        not published is counted, logged, and left to the outbox."""
        try:
            await self.publish_all(notifications)
        except PublishFailed as exc:
            lost = len(notifications) - exc.published
            metrics.PUBLISH_FAILURES.inc(lost)
            logger.warning(
                "published %d of %d frames; %d left to the outbox: %r",
                exc.published,
                len(notifications),
                lost,
                exc.cause,
            )
            return exc.published
        return len(notifications)

    async def publish_all(self, notifications: Sequence[Notification]) -> None:
        """Publish in order, within the timeout, or raise PublishFailed (counted as a Redis
        error). A notification no frame can carry is logged and skipped: retrying cannot help."""
        published = 0
        try:
            async with asyncio.timeout(self.timeout):
                for start in range(0, len(notifications), CHUNK_SIZE):
                    chunk = notifications[start : start + CHUNK_SIZE]
                    await self.broker.publish_many(_messages(chunk))  # one round trip
                    published += len(chunk)
        except PUBLISH_FAILURES as exc:
            metrics.BACKEND_ERRORS.labels(backend="redis").inc()
            raise PublishFailed(published, exc.__cause__ or exc) from exc

    async def reachable(self) -> bool:
        """Redis answers a PING within the timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                return bool(await self.redis.ping())
        except REDIS_FAILURES:
            metrics.BACKEND_ERRORS.labels(backend="redis").inc()
            return False


def _messages(chunk: Sequence[Notification]) -> list[tuple[str, bytes]]:
    encoder = frames.NewFrames()
    return [(n.user_id, message) for n in chunk if (message := _message(n, encoder)) is not None]


def _message(notification: Notification, encoder: frames.NewFrames) -> bytes | None:
    """The envelope for a notification; None (logged) when no frame can carry it."""
    try:
        frame = encoder.encode(notification)
    except serialization.SerializationError as exc:
        logger.error("notification %s cannot be encoded, not published: %s", notification.id, exc)
        return None
    created_ms = int(notification.created_at.timestamp() * 1000)
    return envelope.notification(notification.seq, created_ms, frame)
