"""Writing presence: this node's claim on each user it holds, kept alive by a heartbeat.

Each user's key is a sorted set (member = node id, score = claim expiry in unix ms) with a
key TTL, so a node killed with -9 leaves no ghost: its claims lapse after the TTL.

Every write goes through one writer (group commit): users joining or leaving while a write
is in flight wait for the next one, which carries them all in one pipeline. So a burst of
10,000 sockets costs a few round trips and one Redis connection, never one per user, and
joins, leaves and heartbeats reach Redis in the order they happened."""

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

_CHUNK = 1000  # users per pipeline


class Presence:
    def __init__(
        self, redis: aioredis.Redis, node_id: str, ttl: float, users: Callable[[], list[str]]
    ) -> None:
        self._redis = redis
        self._node = node_id
        self._ttl = ttl
        self._users = users
        # What the next write holds: user -> True (claim) or False (drop); the latest wins.
        self._pending: dict[str, bool] = {}
        self._node_claim: bool | None = None  # the node's own entry: claim, drop, or leave it
        self._written: asyncio.Future[None] | None = None  # resolved when _pending is written
        self._writer: asyncio.Task[None] | None = None
        self._withdrawn = False

    async def joined(self, user_id: str) -> None:
        """Returns once the claim is written (or its failure logged)."""
        if not self._withdrawn:
            self._pending[user_id] = True
            await self._flush()

    async def left(self, user_id: str) -> None:
        self._pending[user_id] = False
        await self._flush()

    async def heartbeat(self) -> None:
        """Refresh every claim this node holds, every third of the TTL."""
        while not self._withdrawn:
            for user in self._users():
                self._pending[user] = True
            self._node_claim = True
            await self._flush()
            await asyncio.sleep(self._ttl / 3)

    async def withdraw(self) -> None:
        """Clean shutdown: drop every claim at once instead of waiting for the TTL."""
        self._withdrawn = True
        for user in self._users():
            self._pending[user] = False
        self._node_claim = False
        await self._flush()

    async def _flush(self) -> None:
        """Wait until what is pending now is written, starting the writer when it is idle."""
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        written = self._written
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending())
        await asyncio.shield(written)

    async def _write_pending(self) -> None:
        try:
            while self._written is not None:
                batch, self._pending = self._pending, {}
                node, self._node_claim = self._node_claim, None
                written, self._written = self._written, None
                try:
                    await self._write(batch, node)
                finally:
                    written.set_result(None)
        finally:
            self._writer = None
            if self._written is not None:  # cancelled with callers waiting: release them
                self._written.set_result(None)
                self._written = None

    async def _write(self, batch: dict[str, bool], node: bool | None) -> None:
        now = now_ms()
        expiry = now + int(self._ttl * 1000)
        key_ttl = math.ceil(self._ttl)
        users = list(batch.items())
        try:
            for start in range(0, max(len(users), 1), _CHUNK):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for user, claim in users[start : start + _CHUNK]:
                        key = keys.presence_key(user)
                        if claim:
                            pipe.zadd(key, {self._node: expiry})
                            pipe.zremrangebyscore(key, "-inf", now)
                            pipe.expire(key, key_ttl)
                        else:
                            pipe.zrem(key, self._node)
                    if node is not None and start == 0:
                        if node:
                            pipe.zadd(keys.NODES_KEY, {self._node: expiry})
                            pipe.zremrangebyscore(keys.NODES_KEY, "-inf", now)
                        else:
                            pipe.zrem(keys.NODES_KEY, self._node)
                    await pipe.execute()
        except Exception as exc:
            BACKEND_ERRORS.labels("redis").inc()
            if node is False:
                logger.warning("presence: withdraw failed; claims lapse after %ss", self._ttl)
            else:
                logger.warning("presence: could not write %d claims (%r)", len(users), exc)
