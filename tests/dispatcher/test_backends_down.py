"""Redis down: still stored and answered. PostgreSQL down: 503 and nothing published."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis

from dispatcher.app import create_app
from dispatcher.metrics import REGISTRY
from shared import keys
from tests.dispatcher.support import AUTH, count_rows, make_settings, new_user, own_redis, serve
from tests.support.services import free_port


def note(user: str) -> dict[str, str]:
    return {"user_id": user, "type": "system:alert", "title": "Disk almost full"}


def failures() -> float:
    value = REGISTRY.get_sample_value("tocsin_publish_failures_total")
    return value or 0.0


async def test_redis_stopped_still_stores_and_answers(
    tmp_path: Path, database_url: str, pool: asyncpg.Pool
) -> None:
    user = new_user()
    with own_redis(tmp_path) as (redis_url, redis_process):
        settings = make_settings(database_url, redis_url)
        with serve(create_app(settings)) as url:
            async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as http:
                assert (await http.post("/v1/notifications", json=note(user))).status_code == 201
                redis_process.kill()
                redis_process.wait(10)
                before = failures()
                async with asyncio.timeout(5):  # the publish timeout is 1 s
                    response = await http.post("/v1/notifications", json=note(user))
                ready = await http.get("/readyz")
    assert response.status_code == 201, response.text
    assert response.json()["notifications"][0]["seq"] == 2
    assert await count_rows(pool, user) == 2
    assert failures() == before + 1
    assert ready.status_code == 503
    assert ready.json()["checks"]["postgres"] == "ok"
    assert ready.json()["checks"]["redis"].startswith("down")


async def test_postgres_unreachable_is_503_and_publishes_nothing(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    user = new_user()
    dead_store = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.user_channel(user))
    with serve(create_app(make_settings(dead_store, redis_url))) as url:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as http:
            async with asyncio.timeout(10):
                response = await http.post("/v1/notifications", json=note(user))
                ready = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
    assert response.headers["retry-after"] == "1"
    assert ready.status_code == 503
    assert ready.json()["checks"]["postgres"].startswith("down")
    assert ready.json()["checks"]["redis"] == "ok"
    # Anything the dispatcher had published would arrive before this sentinel.
    await redis_client.publish(keys.user_channel(user), b"sentinel")
    async with asyncio.timeout(10):
        message = None
        while message is None:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    await pubsub.aclose()
    assert message["data"] == b"sentinel"
