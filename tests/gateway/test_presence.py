"""Presence claims, written to the real Redis (shared/broker/pipelined.py packs the commands
itself, so the network is part of the point). Users and nodes are unique per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from gateway.metrics import BACKEND_ERRORS
from gateway.presence import Presence
from shared import keys
from shared.presence import online_nodes


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def nodes() -> Iterator[list[Presence]]:
    """Every Presence a test makes, closed after it."""
    made: list[Presence] = []
    yield made
    for presence in made:
        presence.close()


async def test_join_heartbeat_leave(redis: aioredis.Redis, tag: str, nodes: list[Presence]) -> None:
    a, b = f"a-{tag}", f"b-{tag}"
    one = Presence(redis, f"n1-{tag}", 30, lambda: [a, b])
    two = Presence(redis, f"n2-{tag}", 30, lambda: [a])
    nodes += [one, two]
    await one.joined(a)
    await two.joined(a)
    assert sorted(await online_nodes(redis, a)) == [f"n1-{tag}", f"n2-{tag}"]
    assert await redis.ttl(keys.presence_key(a)) > 0
    await one.left(a)
    assert await online_nodes(redis, a) == [f"n2-{tag}"]
    await one.withdraw()
    await two.withdraw()
    assert await online_nodes(redis, a) == []


async def test_a_dead_nodes_claim_lapses_while_a_live_node_keeps_the_user(
    redis: aioredis.Redis, tag: str, nodes: list[Presence]
) -> None:
    user, dead_id, live_id = f"a-{tag}", f"dead-{tag}", f"live-{tag}"
    dead = Presence(redis, dead_id, 1, lambda: [user])
    live = Presence(redis, live_id, 1, lambda: [user])
    nodes += [dead, live]
    await dead.joined(user)  # then "kill -9": it never refreshes again
    beat = asyncio.create_task(live.heartbeat())
    try:
        await asyncio.sleep(1.3)
        assert await online_nodes(redis, user) == [live_id]
        members = await redis.zrange(keys.presence_key(user), 0, -1)
        assert members == [live_id.encode()]  # the live node's heartbeat pruned the dead claim
        known = await redis.zrange(keys.NODES_KEY, 0, -1)
        assert live_id.encode() in known and dead_id.encode() not in known
    finally:
        beat.cancel()


async def test_without_any_live_node_the_key_expires(
    redis: aioredis.Redis, tag: str, nodes: list[Presence]
) -> None:
    user = f"a-{tag}"
    dead = Presence(redis, f"dead-{tag}", 1, lambda: [user])
    nodes.append(dead)
    await dead.joined(user)
    await asyncio.sleep(1.2)
    assert await online_nodes(redis, user) == []
    assert not await redis.exists(keys.presence_key(user))


async def test_a_write_that_redis_refuses_is_logged_and_counted(
    redis_url: str, tag: str, nodes: list[Presence], caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that answers with an error (here: a wrong password) costs the write, not the
    caller: joined() returns, the failure is logged."""
    client = aioredis.Redis.from_url(redis_url, password=f"wrong-{tag}")
    presence = Presence(client, f"n-{tag}", 30, lambda: [])
    nodes.append(presence)
    errors = BACKEND_ERRORS.labels("redis")._value.get()
    await presence.joined(f"a-{tag}")
    await client.aclose()
    assert BACKEND_ERRORS.labels("redis")._value.get() == errors + 1
    assert any("presence: could not write 1 claims" in r.getMessage() for r in caplog.records)
