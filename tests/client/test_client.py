"""The sync and async clients against a real dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.client.proxy import FlakyProxy
from tests.dispatcher.support import MAX_BODY_BYTES, PRODUCER_KEY, count_rows, new_user
from tocsin_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    PayloadTooLarge,
    SendResult,
    ValidationError,
)

T = TypeVar("T")


async def blocking(call: Callable[[], T]) -> T:
    """Run a sync-client call off the event loop, bounded in time."""
    async with asyncio.timeout(30):
        return await asyncio.to_thread(call)


async def test_sync_send_and_send_many(dispatcher_url: str, pool: asyncpg.Pool) -> None:
    a, b = new_user(), new_user()
    expires = datetime.now(UTC) + timedelta(days=1)
    with Client(dispatcher_url, PRODUCER_KEY) as tocsin:
        one = await blocking(
            lambda: tocsin.send(
                a,
                "order:status_changed",
                "Shipped",
                "Soon",
                action_url="/o/1",
                data={"o": 1},
                expires_at=expires,
            )
        )
        many = await blocking(lambda: tocsin.send_many([a, b], "system:alert", "Maintenance"))
    assert isinstance(one, SendResult)
    assert (one.user_id, one.seq, one.created) == (a, 1, True)
    assert [(r.user_id, r.seq) for r in many] == [(a, 2), (b, 1)]
    row = await pool.fetchrow("SELECT * FROM tocsin_notifications WHERE id = $1::uuid", one.id)
    assert row is not None and row["data"] == {"o": 1} and row["expires_at"] == expires
    assert await count_rows(pool, a, b) == 3


async def test_async_send_and_replay(dispatcher_url: str, pool: asyncpg.Pool) -> None:
    user = new_user()
    async with AsyncClient(dispatcher_url, PRODUCER_KEY) as tocsin, asyncio.timeout(30):
        first = await tocsin.send(user, "task:assigned", "Review", idempotency_key="t-1")
        again = await tocsin.send(user, "task:assigned", "Review", idempotency_key="t-1")
        many = await tocsin.send_many([user, new_user()], "task:assigned", "All hands")
    assert first.created and not again.created and first.id == again.id
    assert [r.created for r in many] == [True, True]
    assert await count_rows(pool, user) == 2


async def test_validation_error_carries_the_fields(dispatcher_url: str) -> None:
    async with AsyncClient(dispatcher_url, PRODUCER_KEY) as tocsin, asyncio.timeout(30):
        with pytest.raises(ValidationError) as caught:
            await tocsin.send(new_user(), "Bad Type", "", action_url="javascript:x")
    error = caught.value
    assert error.status == 422
    assert {f.field for f in error.fields} == {"type", "title", "action_url"}
    assert "title" in error.message


async def test_auth_errors(dispatcher_url: str) -> None:
    with (
        Client(dispatcher_url, "not-the-key", retries=0) as tocsin,
        pytest.raises(AuthenticationError) as caught,
    ):
        await blocking(lambda: tocsin.send(new_user(), "a:b", "t"))
    assert caught.value.status == 403 and caught.value.code == "forbidden"
    assert "not accepted" in caught.value.message


async def test_payload_too_large(dispatcher_url: str) -> None:
    async with AsyncClient(dispatcher_url, PRODUCER_KEY) as tocsin, asyncio.timeout(30):
        with pytest.raises(PayloadTooLarge) as caught:
            await tocsin.send(new_user(), "a:b", "t", "x" * MAX_BODY_BYTES)
    assert caught.value.status == 413


@pytest.mark.parametrize("lose_response", [False, True], ids=["request-lost", "answer-lost"])
async def test_retry_after_a_dropped_connection_stores_once(
    dispatcher_url: str, pool: asyncpg.Pool, lose_response: bool
) -> None:
    user = new_user()
    port = urlsplit(dispatcher_url).port
    assert port is not None
    with FlakyProxy(port, lose_response=lose_response) as proxy:
        with Client(proxy.url, PRODUCER_KEY, backoff=0.01) as tocsin:
            result = await blocking(lambda: tocsin.send(user, "message:received", "Hi"))
        assert proxy.dropped.is_set() and proxy.connections == 2
    assert result.user_id == user and result.seq == 1
    # When the answer was lost the first attempt did commit: the retry is its replay.
    assert result.created is (not lose_response)
    assert await count_rows(pool, user) == 1


async def test_async_retry_after_a_dropped_connection(
    dispatcher_url: str, pool: asyncpg.Pool
) -> None:
    user = new_user()
    port = urlsplit(dispatcher_url).port
    assert port is not None
    with FlakyProxy(port, lose_response=True) as proxy:
        async with AsyncClient(proxy.url, PRODUCER_KEY, backoff=0.01) as tocsin:
            async with asyncio.timeout(30):
                result = await tocsin.send(user, "message:received", "Hi")
    assert result.seq == 1 and not result.created
    assert await count_rows(pool, user) == 1
