"""Presence claims (fakeredis: the Redis logic, not the network)."""

from __future__ import annotations

import asyncio

import fakeredis
import pytest

from gateway.presence import Presence
from shared import keys
from shared.presence import online_nodes


@pytest.fixture
def redis() -> fakeredis.FakeAsyncRedis:
    return fakeredis.FakeAsyncRedis()


async def test_join_heartbeat_leave(redis: fakeredis.FakeAsyncRedis) -> None:
    users = ["a", "b"]
    one = Presence(redis, "n1", 30, lambda: users)
    two = Presence(redis, "n2", 30, lambda: ["a"])
    await one.joined("a")
    await two.joined("a")
    assert sorted(await online_nodes(redis, "a")) == ["n1", "n2"]
    assert await redis.ttl(keys.presence_key("a")) > 0
    await one.left("a")
    assert await online_nodes(redis, "a") == ["n2"]
    await one.withdraw()
    await two.withdraw()
    assert await online_nodes(redis, "a") == []


async def test_a_dead_nodes_claim_lapses_while_a_live_node_keeps_the_user(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    dead = Presence(redis, "dead", 1, lambda: ["a"])
    live = Presence(redis, "live", 1, lambda: ["a"])
    await dead.joined("a")  # then "kill -9": it never refreshes again
    beat = asyncio.create_task(live.heartbeat())
    try:
        await asyncio.sleep(1.3)
        assert await online_nodes(redis, "a") == ["live"]
        members = await redis.zrange(keys.presence_key("a"), 0, -1)
        assert members == [b"live"]  # the live node's heartbeat pruned the dead claim
        assert await redis.zrange(keys.NODES_KEY, 0, -1) == [b"live"]
    finally:
        beat.cancel()


async def test_without_any_live_node_the_key_expires(redis: fakeredis.FakeAsyncRedis) -> None:
    dead = Presence(redis, "dead", 1, lambda: ["a"])
    await dead.joined("a")
    await asyncio.sleep(1.2)
    assert await online_nodes(redis, "a") == []
    assert not await redis.exists(keys.presence_key("a"))
