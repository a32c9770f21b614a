"""shared/preferences_store.py against the real PostgreSQL."""

from __future__ import annotations

import base64
import uuid

import asyncpg

from shared import preferences_store as store
from shared.preferences import DEFAULT_PREFERENCES, Preferences, PushSubscription
from tests.gateway.cluster import new_user


def _sub() -> PushSubscription:
    key = base64.urlsafe_b64encode(b"\x04" + uuid.uuid4().bytes * 4).decode().rstrip("=")
    auth = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return PushSubscription(f"https://push.example.net/{uuid.uuid4().hex}", key, auth, "UA")


async def test_get_is_the_defaults_until_put(pool: asyncpg.Pool) -> None:
    user = new_user()
    assert await store.get(pool, user) == DEFAULT_PREFERENCES
    prefs = Preferences.from_wire(
        {
            "channels": {"email": {"task:assigned": False}},
            "quietHours": {"start": "23:30", "end": "06:15", "timeZone": "Asia/Tokyo"},
        }
    )
    await store.put(pool, user, prefs)
    assert await store.get(pool, user) == prefs
    await store.put(pool, user, DEFAULT_PREFERENCES)
    assert await store.get(pool, user) == DEFAULT_PREFERENCES


async def test_a_stored_row_that_no_longer_validates_reads_as_defaults(pool: asyncpg.Pool) -> None:
    user = new_user()
    await pool.execute(
        "INSERT INTO tocsin_user_preferences (user_id, preferences) VALUES ($1, $2)",
        user,
        {"channels": {"fax": {"*": True}}},
    )
    assert await store.get(pool, user) == DEFAULT_PREFERENCES


async def test_subscriptions_add_list_move_and_remove(pool: asyncpg.Pool) -> None:
    alice, bob = new_user(), new_user()
    first, second = _sub(), _sub()
    assert await store.add_push_subscription(pool, alice, first) is True
    assert await store.add_push_subscription(pool, alice, second) is True
    assert await store.push_subscriptions(pool, alice) == [first, second]
    assert await store.add_push_subscription(pool, bob, first) is False  # moved to Bob
    assert await store.push_subscriptions(pool, alice) == [second]
    assert await store.push_subscriptions(pool, bob) == [first]
    assert await store.remove_push_subscription(pool, second.endpoint, user_id=bob) is False
    assert await store.remove_push_subscription(pool, second.endpoint) is True
    assert await store.push_subscriptions(pool, alice) == []


async def test_a_user_keeps_only_the_newest_subscriptions(pool: asyncpg.Pool) -> None:
    user = new_user()
    subs = [_sub() for _ in range(store.MAX_PUSH_SUBSCRIPTIONS + 3)]
    for sub in subs:
        await store.add_push_subscription(pool, user, sub)
    assert await store.push_subscriptions(pool, user) == subs[3:]


async def test_functions_run_inside_a_callers_transaction(pool: asyncpg.Pool) -> None:
    user = new_user()
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await store.put(conn, user, Preferences.from_wire({"channels": {"push": {"*": False}}}))
        await tx.rollback()
    assert await store.get(pool, user) == DEFAULT_PREFERENCES
