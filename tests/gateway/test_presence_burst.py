"""Presence under a burst, against the real Redis: 300 users arriving at once and leaving at
once through the hub, with redis-py's default pool (100 connections), must all be claimed
and all be dropped, with nothing logged and one connection used."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.connection import Connection
from gateway.hub import Hub
from gateway.presence import Presence
from shared import keys
from shared.models import Notification
from shared.presence import online_nodes
from tests.gateway.cluster import new_user
from tests.gateway.fakes import FakeSocket

USERS = 300


class Subscribed:
    """The broker's side of the hub: every subscribe is confirmed at once."""

    async def subscribe(self, user_id: str) -> None:
        await asyncio.sleep(0)

    async def unsubscribe(self, user_id: str) -> None:
        await asyncio.sleep(0)


async def _no_rows(after: int, limit: int) -> list[Notification]:
    return []


def _socket(user: str, index: int) -> Connection:
    return Connection(
        FakeSocket(),
        user,
        f"burst/{index}",
        _no_rows,
        held_limit=8,
        buffer_bytes=4096,
        page_size=10,
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _connections_named(redis: aioredis.Redis, name: str) -> int:
    clients = await redis.client_list()
    return sum(1 for client in clients if client.get("name") == name)


async def test_300_users_join_and_leave_at_once(
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    node = f"burst-{uuid.uuid4().hex[:8]}"
    hub: Hub
    presence = Presence(redis, node, 30, lambda: hub.users())
    hub = Hub(Subscribed(), presence)
    users = [new_user() for _ in range(USERS)]
    sockets = [_socket(user, i) for i, user in enumerate(users)]
    # Two tabs of the first user: the second waits for the first's subscribe, no second claim.
    sockets.append(_socket(users[0], USERS))
    caplog.set_level(logging.WARNING, logger="tocsin.gateway")

    await asyncio.gather(*(hub.add(s) for s in sockets))

    assert hub.count() == USERS + 1
    claimed = [await online_nodes(redis, u) for u in users]
    assert all(nodes == [node] for nodes in claimed)
    assert all([await redis.ttl(keys.presence_key(u)) > 0 for u in users[:5]])
    # One writer, on one connection of its own, not one per user.
    assert await _connections_named(redis, f"tocsin-presence:{node}") == 1

    await asyncio.gather(*(hub.remove(s) for s in sockets))

    assert hub.count() == 0 and hub.empty.is_set()
    remaining = [await online_nodes(redis, u) for u in users]
    assert all(nodes == [] for nodes in remaining)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    presence.close()


async def test_heartbeat_and_withdraw_cover_the_held_users(redis: aioredis.Redis) -> None:
    node = f"burst-{uuid.uuid4().hex[:8]}"
    held = [new_user() for _ in range(USERS)]
    presence = Presence(redis, node, 30, lambda: held)
    beat = asyncio.create_task(presence.heartbeat())
    try:
        for _ in range(200):  # the first beat writes at once; bounded at 10 s
            if await online_nodes(redis, held[-1]) == [node]:
                break
            await asyncio.sleep(0.05)
        assert await online_nodes(redis, held[-1]) == [node]
        assert node.encode() in await redis.zrange(keys.NODES_KEY, 0, -1)
        # A leave and a join in one write: each user ends as its own call left it.
        await asyncio.gather(presence.left(held[0]), presence.joined(held[1]))
        assert await online_nodes(redis, held[1]) == [node]
        assert await online_nodes(redis, held[0]) == []
        await presence.withdraw()
        assert all([await online_nodes(redis, u) == [] for u in held])
        assert node.encode() not in await redis.zrange(keys.NODES_KEY, 0, -1)
    finally:
        beat.cancel()
        presence.close()
