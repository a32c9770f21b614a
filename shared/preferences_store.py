"""PostgreSQL queries for user preferences and web push subscriptions (asyncpg).

Every function takes a pool or a connection, so a caller may run it inside its own transaction.
JSON goes through the pool's jsonb codec (shared.repository._init_connection).
"""

from __future__ import annotations

import logging

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.preferences import DEFAULT_PREFERENCES, Preferences, PreferencesError, PushSubscription

logger = logging.getLogger("tocsin.store")

Executor = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy
# Browsers per user; registering one more drops the oldest (its browser is likely long gone).
MAX_PUSH_SUBSCRIPTIONS = 20


async def get(db: Executor, user_id: str) -> Preferences:
    """The user's preferences; the defaults when none were saved (or the row is unreadable)."""
    row = await db.fetchrow(
        "SELECT preferences FROM tocsin_user_preferences WHERE user_id = $1", user_id
    )
    return from_stored(None if row is None else row["preferences"])


def from_stored(stored: object) -> Preferences:
    """A stored preferences value (None when no row); the defaults when it is unreadable."""
    if stored is None:
        return DEFAULT_PREFERENCES
    try:
        return Preferences.from_wire(stored)
    except PreferencesError as exc:  # written by hand or by an older version
        logger.warning("stored preferences of a user are invalid (%s); using defaults", exc)
        return DEFAULT_PREFERENCES


async def put(db: Executor, user_id: str, prefs: Preferences) -> None:
    await db.execute(
        "INSERT INTO tocsin_user_preferences (user_id, preferences) VALUES ($1, $2)"
        " ON CONFLICT (user_id) DO UPDATE"
        " SET preferences = EXCLUDED.preferences, updated_at = now()",
        user_id,
        prefs.to_wire(),
    )


async def push_subscriptions(db: Executor, user_id: str) -> list[PushSubscription]:
    """The user's subscriptions, oldest first."""
    rows = await db.fetch(
        "SELECT endpoint, p256dh, auth, user_agent FROM tocsin_push_subscriptions"
        " WHERE user_id = $1 ORDER BY id",
        user_id,
    )
    return [PushSubscription(r["endpoint"], r["p256dh"], r["auth"], r["user_agent"]) for r in rows]


async def add_push_subscription(db: Executor, user_id: str, subscription: PushSubscription) -> bool:
    """Upsert by endpoint; True if the endpoint was new. An endpoint already stored for another
    user moves to this one: the browser holding it is now signed in as this user, so the old
    owner must stop receiving its pushes. Keeps the user's newest MAX_PUSH_SUBSCRIPTIONS."""
    inserted = await db.fetchval(
        "INSERT INTO tocsin_push_subscriptions (user_id, endpoint, p256dh, auth, user_agent)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (endpoint) DO UPDATE SET user_id = EXCLUDED.user_id,"
        " p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, user_agent = EXCLUDED.user_agent"
        " RETURNING (xmax = 0)",
        user_id,
        subscription.endpoint,
        subscription.p256dh,
        subscription.auth,
        subscription.user_agent,
    )
    await db.execute(
        "DELETE FROM tocsin_push_subscriptions WHERE user_id = $1 AND id NOT IN"
        " (SELECT id FROM tocsin_push_subscriptions WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
        user_id,
        MAX_PUSH_SUBSCRIPTIONS,
    )
    return bool(inserted)


async def remove_push_subscription(db: Executor, endpoint: str, user_id: str | None = None) -> bool:
    """Delete the subscription with this endpoint (only if it is `user_id`'s, when given);
    True if a row went. The worker calls it without a user when the push service says 404/410."""
    if user_id is None:
        status = await db.execute(
            "DELETE FROM tocsin_push_subscriptions WHERE endpoint = $1", endpoint
        )
    else:
        status = await db.execute(
            "DELETE FROM tocsin_push_subscriptions WHERE endpoint = $1 AND user_id = $2",
            endpoint,
            user_id,
        )
    return bool(status != "DELETE 0")
