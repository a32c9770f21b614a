"""The happy path over HTTP: storage, per-user order, persist-before-publish, idempotency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

from shared import envelope, keys, serialization
from tests.dispatcher.support import count_rows, new_user

SENTINEL = b"sentinel"


def payload(user_id: str, **extra: Any) -> dict[str, Any]:
    return {"user_id": user_id, "type": "order:status_changed", "title": "Shipped", **extra}


async def read_until_sentinel(pubsub: aioredis.client.PubSub) -> list[bytes]:
    """Messages published before the test's own sentinel (Redis keeps publish order)."""
    got: list[bytes] = []
    async with asyncio.timeout(10):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is None:
                continue
            if message["data"] == SENTINEL:
                return got
            got.append(message["data"])


async def test_send_stores_every_field(http: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    user = new_user()
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = payload(user, body="On its way", action_url="/orders/7", data={"order": 7})
    response = await http.post("/v1/notifications", json={**body, "expires_at": expires})
    assert response.status_code == 201, response.text
    [item] = response.json()["notifications"]
    assert item["user_id"] == user and item["seq"] == 1 and item["created"] is True
    row = await pool.fetchrow("SELECT * FROM tocsin_notifications WHERE user_id = $1", user)
    assert row is not None
    assert (str(row["id"]), row["title"], row["body"]) == (item["id"], "Shipped", "On its way")
    assert (row["action_url"], row["data"]) == ("/orders/7", {"order": 7})
    assert row["expires_at"] == datetime.fromisoformat(expires)


async def test_send_many_collapses_duplicates(http: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    a, b = new_user(), new_user()
    response = await http.post(
        "/v1/notifications",
        json={"user_ids": [a, b, a], "type": "system:alert", "title": "Maintenance"},
    )
    assert response.status_code == 201, response.text
    items = response.json()["notifications"]
    assert [i["user_id"] for i in items] == [a, b]
    assert all(i["seq"] == 1 and i["created"] for i in items)
    assert await count_rows(pool, a, b) == 2


async def test_concurrent_sends_get_contiguous_seqs(
    http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    user = new_user()
    async with asyncio.timeout(30):
        answers = await asyncio.gather(
            *(http.post("/v1/notifications", json=payload(user, title=f"n{i}")) for i in range(50))
        )
    assert [a.status_code for a in answers] == [201] * 50
    seqs = sorted(a.json()["notifications"][0]["seq"] for a in answers)
    assert seqs == list(range(1, 51))
    stored = await pool.fetch(
        "SELECT seq FROM tocsin_notifications WHERE user_id = $1 ORDER BY seq", user
    )
    assert [r["seq"] for r in stored] == list(range(1, 51))


async def test_row_is_committed_before_the_frame_is_published(
    http: httpx.AsyncClient, pool: asyncpg.Pool, redis_client: aioredis.Redis
) -> None:
    user, sends = new_user(), 30
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.user_channel(user))
    found: list[bool] = []

    async def watch() -> None:
        while len(found) < sends:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is None:
                continue
            frame = serialization.loads(envelope.parse(message["data"]).frame)
            ident = frame["notification"]["id"]
            row = await pool.fetchval("SELECT 1 FROM tocsin_notifications WHERE id = $1", ident)
            found.append(row == 1)

    async with asyncio.timeout(30):
        watcher = asyncio.create_task(watch())
        answers = await asyncio.gather(
            *(http.post("/v1/notifications", json=payload(user)) for _ in range(sends))
        )
        await watcher
    await pubsub.aclose()
    assert all(a.status_code == 201 for a in answers)
    assert found == [True] * sends


async def test_published_frame_is_the_protocol_frame(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    user = new_user()
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.user_channel(user))
    response = await http.post("/v1/notifications", json=payload(user, data={"k": "v"}))
    await redis_client.publish(keys.user_channel(user), SENTINEL)
    [raw] = await read_until_sentinel(pubsub)
    await pubsub.aclose()
    routed = envelope.parse(raw)  # the routing line gateways read without decoding JSON
    frame = serialization.loads(routed.frame)
    item = response.json()["notifications"][0]
    created = datetime.fromisoformat(frame["notification"]["createdAt"])
    assert (routed.seq, routed.created) == (item["seq"], int(created.timestamp() * 1000) / 1000)
    assert frame["type"] == "notification:new" and frame["seq"] == item["seq"]
    assert frame["notification"]["id"] == item["id"]
    assert frame["notification"]["data"] == {"k": "v"}
    assert frame["notification"]["actionUrl"] is None


async def test_same_idempotency_key_makes_one_notification(
    http: httpx.AsyncClient, pool: asyncpg.Pool, redis_client: aioredis.Redis
) -> None:
    user = new_user()
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.user_channel(user))
    body = payload(user, idempotency_key="order-7-shipped")
    async with asyncio.timeout(30):
        answers = await asyncio.gather(
            *(http.post("/v1/notifications", json=body) for _ in range(10))
        )
    await redis_client.publish(keys.user_channel(user), SENTINEL)
    published = await read_until_sentinel(pubsub)
    await pubsub.aclose()
    items = [a.json()["notifications"][0] for a in answers]
    assert len({i["id"] for i in items}) == 1
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    assert sum(i["created"] for i in items) == 1
    assert await count_rows(pool, user) == 1
    assert len(published) == 1


async def test_replay_to_many_creates_only_the_missing(
    http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    a, b = new_user(), new_user()
    base = {"type": "task:assigned", "title": "Review", "idempotency_key": "k1"}
    first = await http.post("/v1/notifications", json={**base, "user_ids": [a]})
    second = await http.post("/v1/notifications", json={**base, "user_ids": [a, b]})
    assert first.status_code == 201 and second.status_code == 201
    items = second.json()["notifications"]
    assert [(i["user_id"], i["created"]) for i in items] == [(a, False), (b, True)]
    assert items[0]["id"] == first.json()["notifications"][0]["id"]
    assert await count_rows(pool, a, b) == 2
