"""Fallback jobs as the services touch them: created in the notification's transaction,
cancelled when a notification is read or archived, or a user turns a channel off.

The worker's side (claim, lease, retry, finish) is dispatcher/fallback/jobs.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared import preferences_store
from shared.fallback_rules import EMAIL, PUSH, PlannedJob
from shared.models import Notification
from shared.preferences import Preferences
from shared.preferences_store import Executor

logger = logging.getLogger("tocsin.fallback")

Connection = asyncpg.Connection | PoolConnectionProxy


@dataclass(frozen=True)
class FallbackRequest:
    """What one send asks of the fallback: the jobs its rules allow, and an address."""

    jobs: Sequence[PlannedJob]
    email: str | None = None


@dataclass(frozen=True)
class _Recipient:
    preferences: Preferences
    has_email: bool
    has_push: bool


async def _recipients(conn: Connection, user_ids: list[str]) -> dict[str, _Recipient]:
    rows = await conn.fetch(
        "SELECT u.user_id, p.preferences, pr.email IS NOT NULL AS has_email,"
        " EXISTS (SELECT 1 FROM tocsin_push_subscriptions AS s WHERE s.user_id = u.user_id)"
        "  AS has_push"
        " FROM unnest($1::text[]) AS u(user_id)"
        " LEFT JOIN tocsin_user_preferences AS p ON p.user_id = u.user_id"
        " LEFT JOIN tocsin_user_profiles AS pr ON pr.user_id = u.user_id",
        user_ids,
    )
    return {
        r["user_id"]: _Recipient(
            preferences_store.from_stored(r["preferences"]), r["has_email"], r["has_push"]
        )
        for r in rows
    }


def _wanted(job: PlannedJob, kind: str, who: _Recipient, email: str | None) -> bool:
    if not who.preferences.allows(job.channel, kind, job.default_on):
        return False
    if job.channel == EMAIL:
        return email is not None or who.has_email
    return job.channel == PUSH and who.has_push


async def create(conn: Connection, fresh: Sequence[Notification], request: FallbackRequest) -> int:
    """Jobs for newly stored notifications, in the caller's transaction: one per notification
    and channel the rules, the user's preferences and a known address or push subscription
    allow. Returns how many were created."""
    if not fresh or not request.jobs:
        return 0
    who = await _recipients(conn, sorted({n.user_id for n in fresh}))
    rows: list[tuple[object, ...]] = []
    for n in fresh:
        for job in request.jobs:
            if _wanted(job, n.type, who[n.user_id], request.email):
                email = request.email if job.channel == EMAIL else None
                rows.append((n.id, n.user_id, job.channel, job.delay, job.default_on, email))
    if not rows:
        return 0
    await conn.executemany(
        "INSERT INTO tocsin_fallback_jobs"
        " (notification_id, user_id, channel, due_at, default_on, email)"
        " VALUES ($1::uuid, $2, $3, now() + make_interval(secs => $4), $5, $6)"
        " ON CONFLICT (notification_id, channel) DO NOTHING",
        rows,
    )
    return len(rows)


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
