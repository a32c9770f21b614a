"""Reading presence: which gateway nodes hold a user. Advisory only (guarantee 5)."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from shared import keys


def now_ms() -> int:
    return int(time.time() * 1000)


async def online_nodes(redis: aioredis.Redis, user_id: str) -> list[str]:
    """Nodes whose claim on the user has not expired (a dead node's claim lapses by TTL)."""
    members = await redis.zrangebyscore(keys.presence_key(user_id), now_ms(), "+inf")
    return [m.decode() if isinstance(m, bytes) else str(m) for m in members]
