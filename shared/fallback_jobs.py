"""Fallback jobs as the services touch them: created in the notification's transaction (by
the send's one statement, shared/repository.py, under the rule of migration 0005), cancelled
when a notification is read or archived, or a user turns a channel off.

The worker's side (claim, lease, retry, finish) is dispatcher/fallback/jobs.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from shared import preferences_store
from shared.fallback_rules import PlannedJob
from shared.preferences import Preferences
from shared.preferences_store import Executor

logger = logging.getLogger("tocsin.fallback")


@dataclass(frozen=True)
class FallbackRequest:
    """What one send asks of the fallback: the jobs its rules allow, and an address."""

    jobs: Sequence[PlannedJob]
    email: str | None = None


NO_FALLBACK = FallbackRequest(())


async def cancel_notifications(db: Executor, user_id: str, ids: Sequence[str], why: str) -> int:
    """Cancel the pending jobs of these notifications (read or archived)."""
    status = await db.execute(
        "UPDATE tocsin_fallback_jobs SET state = 'cancelled', outcome = $3, finished_at = now()"
        " WHERE user_id = $1 AND notification_id = ANY($2::uuid[]) AND state = 'pending'",
        user_id,
        list(ids),
        why,
    )
    return int(status.rsplit(" ", 1)[-1])


async def cancel_read(db: Executor, user_id: str) -> int:
    """Cancel the pending jobs of every notification of the user that is now read."""
    status = await db.execute(
        "UPDATE tocsin_fallback_jobs AS j SET state = 'cancelled', outcome = 'read',"
        " finished_at = now() FROM tocsin_notifications AS n"
        " WHERE j.user_id = $1 AND j.state = 'pending' AND n.id = j.notification_id"
        " AND n.read_at IS NOT NULL",
        user_id,
    )
    return int(status.rsplit(" ", 1)[-1])


async def cancel_disallowed(db: Executor, user_id: str, prefs: Preferences) -> int:
    """Cancel the user's pending jobs on channels their new preferences turn off."""
    rows = await db.fetch(
        "SELECT j.id, j.channel, j.default_on, n.type FROM tocsin_fallback_jobs AS j"
        " JOIN tocsin_notifications AS n ON n.id = j.notification_id"
        " WHERE j.user_id = $1 AND j.state = 'pending'",
        user_id,
    )
    off = [r["id"] for r in rows if not prefs.allows(r["channel"], r["type"], r["default_on"])]
    if not off:
        return 0
    status = await db.execute(
        "UPDATE tocsin_fallback_jobs SET state = 'cancelled', outcome = 'preferences',"
        " finished_at = now() WHERE id = ANY($1::bigint[]) AND state = 'pending'",
        off,
    )
    return int(status.rsplit(" ", 1)[-1])


async def save_preferences(pool: asyncpg.Pool, user_id: str, prefs: Preferences) -> None:
    """Store a user's preferences and cancel the pending jobs they turn off, in one transaction
    (the user's own PUT, the producer's PUT and the unsubscribe link all go through here)."""
    async with pool.acquire() as conn, conn.transaction():
        await preferences_store.put(conn, user_id, prefs)
        await cancel_disallowed(conn, user_id, prefs)
