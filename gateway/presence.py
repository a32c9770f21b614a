"""Writing presence: this node's claim on each user it holds, kept alive by a heartbeat.

Each user's key is a sorted set (member = node id, score = claim expiry in unix ms) with a
key TTL, so a node killed with -9 leaves no ghost: its claims lapse after the TTL.

Every write goes through one writer (group commit): users joining or leaving while a write
is in flight wait for the next one, which carries them all in one pipeline. So a burst of
10,000 sockets costs a few round trips and one Redis connection, never one per user, and
joins, leaves and heartbeats reach Redis in the order they happened. The commands are packed
by hand and pipelined on a connection of their own (shared/broker/pipelined.py): through
redis-py's pipeline, building each and reading each reply took a tenth of a connect's CPU."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

import redis.asyncio as aioredis

from gateway.metrics import BACKEND_ERRORS
from shared import keys
from shared.broker.link import Endpoint, command
from shared.broker.pipelined import Pipelined
from shared.presence import now_ms

logger = logging.getLogger("tocsin.gateway.presence")

_CHUNK = 3000  # commands per write (a claim is three)
_TIMEOUT = 5.0  # seconds for a write's replies (and to connect); then the next write retries


class Presence:
    def __init__(
        self, redis: aioredis.Redis, node_id: str, ttl: float, users: Callable[[], list[str]]
    ) -> None:
        # Where `redis` points, on a connection of its own; _TIMEOUT bounds each write.
        self._commands = Pipelined(
            Endpoint.from_pool(redis.connection_pool), _TIMEOUT, name=f"tocsin-presence:{node_id}"
        )
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
        at = now_ms()
        now, expiry = b"%d" % at, b"%d" % (at + int(self._ttl * 1000))
        key_ttl = b"%d" % math.ceil(self._ttl)
        me = self._node.encode()
        commands: list[bytes] = []
        if node is not None:
            if node:
                commands.append(command(b"ZADD", keys.NODES_KEY.encode(), expiry, me))
                commands.append(command(b"ZREMRANGEBYSCORE", keys.NODES_KEY.encode(), b"-inf", now))
            else:
                commands.append(command(b"ZREM", keys.NODES_KEY.encode(), me))
        for user, claim in batch.items():
            key = keys.presence_key(user).encode()
            if claim:
                commands.append(command(b"ZADD", key, expiry, me))
                commands.append(command(b"ZREMRANGEBYSCORE", key, b"-inf", now))
                commands.append(command(b"EXPIRE", key, key_ttl))
            else:
                commands.append(command(b"ZREM", key, me))
        if not commands:
            return
        try:
            async with asyncio.timeout(_TIMEOUT):
                await self._commands.execute(
                    (b"".join(part), len(part))
                    for start in range(0, len(commands), _CHUNK)
                    if (part := commands[start : start + _CHUNK])
                )
        except Exception as exc:
            BACKEND_ERRORS.labels("redis").inc()
            if node is False:
                logger.warning("presence: withdraw failed; claims lapse after %ss", self._ttl)
            else:
                logger.warning("presence: could not write %d claims (%r)", len(batch), exc)

    def close(self) -> None:
        self._commands.close()
