"""Writing presence: this node's claim on each user it holds, kept alive by a heartbeat.

Each user's key is a sorted set (member = node id, score = claim expiry in unix ms) with a
key TTL, so a node killed with -9 leaves no ghost: its claims lapse after the TTL."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

import redis.asyncio as aioredis

from gateway.metrics import BACKEND_ERRORS
from shared import keys
from shared.presence import now_ms

logger = logging.getLogger("tocsin.gateway.presence")

_CHUNK = 1000


class Presence:
    def __init__(
        self, redis: aioredis.Redis, node_id: str, ttl: float, users: Callable[[], list[str]]
    ) -> None:
        self._redis = redis
        self._node = node_id
        self._ttl = ttl
        self._users = users

    async def joined(self, user_id: str) -> None:
        await self._claim([user_id])

    async def left(self, user_id: str) -> None:
        try:
            await self._redis.zrem(keys.presence_key(user_id), self._node)
        except Exception:
            BACKEND_ERRORS.labels("redis").inc()
            logger.warning("presence: could not remove %s", user_id)

    async def heartbeat(self) -> None:
        """Refresh every claim this node holds, every third of the TTL."""
        while True:
            await self._claim(self._users(), node=True)
            await asyncio.sleep(self._ttl / 3)

    async def withdraw(self) -> None:
        """Clean shutdown: drop every claim at once instead of waiting for the TTL."""
        users = self._users()
        try:
            for start in range(0, len(users), _CHUNK):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for user in users[start : start + _CHUNK]:
                        pipe.zrem(keys.presence_key(user), self._node)
                    await pipe.execute()
            await self._redis.zrem(keys.NODES_KEY, self._node)
        except Exception:
            BACKEND_ERRORS.labels("redis").inc()
            logger.warning("presence: withdraw failed; claims lapse after %ss", self._ttl)

    async def _claim(self, users: list[str], node: bool = False) -> None:
        now = now_ms()
        expiry = now + int(self._ttl * 1000)
        key_ttl = math.ceil(self._ttl)
        try:
            for start in range(0, max(len(users), 1), _CHUNK):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for user in users[start : start + _CHUNK]:
                        key = keys.presence_key(user)
                        pipe.zadd(key, {self._node: expiry})
                        pipe.zremrangebyscore(key, "-inf", now)
                        pipe.expire(key, key_ttl)
                    if node and start == 0:
                        pipe.zadd(keys.NODES_KEY, {self._node: expiry})
                        pipe.zremrangebyscore(keys.NODES_KEY, "-inf", now)
                    await pipe.execute()
        except Exception:
            BACKEND_ERRORS.labels("redis").inc()
            logger.warning("presence: heartbeat failed for %d users", len(users))
