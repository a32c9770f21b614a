"""The worker's queue: claim (lease) jobs, record sends, retry, finish. Every query the
worker runs against the jobs, send records and profiles lives here.

Claims use `FOR UPDATE SKIP LOCKED`, so any number of workers share the table. A claim is a
lease (`locked_by`, `locked_until`): a worker that dies loses its jobs when the lease runs out.
Every later write is fenced on `locked_by`, so a worker whose lease was taken over changes
nothing. A user's email jobs are claimed together (under a per-user advisory lock) so one
worker sees them all and can fold them into one digest.

The send record (tocsin_fallback_sends) makes each send happen at most once per notification
and channel: 'preparing' is written before anything leaves, 'sending' at the point of no
return (in the same statement that checks the notification is still unread), 'sent' after.
A record a crash left in 'preparing' is taken over and sent by the next lease holder; one left
in 'sending' may or may not have gone out, and is marked 'unknown', never sent again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.fallback_rules import CHANNELS, PUSH
from shared.models import Notification

_EMAIL_LOCKS = 0x70C5_1B  # advisory-lock namespace: one claimer per user's email jobs
_FREE = "(locked_until IS NULL OR locked_until < now())"
_LEASE = "locked_by = $1, locked_until = now() + make_interval(secs => $2), attempts = attempts + 1"
# The notification is still worth the channel at the point of no return.
_STILL_WANTED = (
    "n.read_at IS NULL AND n.archived_at IS NULL AND (n.expires_at IS NULL OR n.expires_at > now())"
)


@dataclass(frozen=True)
class Job:
    id: int
    notification_id: str
    user_id: str
    channel: str
    due_at: datetime
    default_on: bool
    email: str | None
    attempts: int

    @classmethod
    def from_record(cls, row: Any) -> Job:
        return cls(
            id=row["id"],
            notification_id=str(row["notification_id"]),
            user_id=row["user_id"],
            channel=row["channel"],
            due_at=row["due_at"],
            default_on=row["default_on"],
            email=row["email"],
            attempts=row["attempts"],
        )


def _ids(jobs: Sequence[Job]) -> list[int]:
    return [job.id for job in jobs]


def _notifications(jobs: Sequence[Job]) -> list[str]:
    return [job.notification_id for job in jobs]


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class Queue:
    def __init__(self, pool: asyncpg.Pool, owner: str, lease: float, digest_window: float):
        self.pool = pool
        self.owner = owner
        self.lease = lease
        self.digest_window = digest_window

    # -- claiming ---------------------------------------------------------------------------

    async def claim_push(self, limit: int) -> list[Job]:
        rows = await self.pool.fetch(
            f"UPDATE tocsin_fallback_jobs SET {_LEASE} WHERE id IN ("
            " SELECT id FROM tocsin_fallback_jobs WHERE state = 'pending' AND channel = 'push'"
            f" AND due_at <= now() AND {_FREE} ORDER BY due_at LIMIT $3"
            " FOR UPDATE SKIP LOCKED) RETURNING *",
            self.owner,
            self.lease,
            limit,
        )
        return [Job.from_record(r) for r in rows]

    async def claim_email(self, users: int) -> list[list[Job]]:
        """Up to `users` groups: each user's due email jobs with every other pending one due
        within the digest window, soonest first."""
        async with self.pool.acquire() as conn, conn.transaction():
            locked = await conn.fetch(
                "SELECT user_id FROM (SELECT DISTINCT user_id FROM ("
                "  SELECT user_id FROM tocsin_fallback_jobs WHERE state = 'pending'"
                f"  AND channel = 'email' AND due_at <= now() AND {_FREE}"
                "  ORDER BY due_at LIMIT $2) AS due) AS u"
                " WHERE pg_try_advisory_xact_lock($1, hashtext(user_id))",
                _EMAIL_LOCKS,
                users * 4,
            )
            if not locked:
                return []
            rows = await conn.fetch(
                f"UPDATE tocsin_fallback_jobs SET {_LEASE} WHERE id IN ("
                " SELECT id FROM tocsin_fallback_jobs WHERE state = 'pending'"
                " AND channel = 'email' AND user_id = ANY($3::text[])"
                f" AND due_at <= now() + make_interval(secs => $4) AND {_FREE}"
                " FOR UPDATE SKIP LOCKED) RETURNING *, due_at <= now() AS due",
                self.owner,
                self.lease,
                [r["user_id"] for r in locked][:users],
                self.digest_window,
            )
        return await self._due_groups(rows)

    async def _due_groups(self, rows: Sequence[Any]) -> list[list[Job]]:
        groups: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            groups[row["user_id"]].append(row)
        ready: list[list[Job]] = []
        idle: list[list[Job]] = []
        for group in groups.values():
            jobs = sorted((Job.from_record(r) for r in group), key=lambda j: (j.due_at, j.id))
            (ready if any(r["due"] for r in group) else idle).append(jobs)
        for jobs in idle:  # claimed by another worker between our read and our lock
            await self.release(jobs)
        return ready

    async def release(self, jobs: Sequence[Job]) -> None:
        """Give claimed jobs back untouched (the claim does not count as an attempt)."""
        await self.pool.execute(
            "UPDATE tocsin_fallback_jobs SET locked_by = NULL, locked_until = NULL,"
            " attempts = greatest(attempts - 1, 0)"
            " WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND state = 'pending'",
            _ids(jobs),
            self.owner,
        )

    # -- what a job needs -------------------------------------------------------------------

    async def notifications(self, jobs: Sequence[Job]) -> dict[str, Notification]:
        rows = await self.pool.fetch(
            "SELECT * FROM tocsin_notifications WHERE id = ANY($1::uuid[])", _notifications(jobs)
        )
        return {str(r["id"]): Notification.from_record(r) for r in rows}

    async def delivered(self, jobs: Sequence[Job]) -> set[str]:
        """Notifications a tab acked: the user was online for them."""
        rows = await self.pool.fetch(
            "SELECT id FROM tocsin_notifications WHERE id = ANY($1::uuid[])"
            " AND delivered_at IS NOT NULL",
            _notifications(jobs),
        )
        return {str(r["id"]) for r in rows}

    async def profile_email(self, user_id: str) -> str | None:
        value = await self.pool.fetchval(
            "SELECT email FROM tocsin_user_profiles WHERE user_id = $1", user_id
        )
        return str(value) if value else None

    # -- the send record --------------------------------------------------------------------

    async def reserve(self, jobs: Sequence[Job], channel: str, digest: bool) -> dict[str, str]:
        """Write 'preparing' send records for these jobs (taking over ones a crashed worker
        left in 'preparing'). Returns {notification_id: state} for those already past it."""
        rows = await self.pool.fetch(
            "WITH wanted AS (SELECT * FROM unnest($1::uuid[], $2::bigint[]) AS w(nid, job_id)),"
            " taken AS ("
            "  INSERT INTO tocsin_fallback_sends"
            "   (notification_id, channel, job_id, state, owner, digest)"
            "  SELECT nid, $3, job_id, 'preparing', $4, $5 FROM wanted"
            "  ON CONFLICT (notification_id, channel) DO UPDATE SET owner = EXCLUDED.owner,"
            "   job_id = EXCLUDED.job_id, digest = EXCLUDED.digest, updated_at = now()"
            "  WHERE tocsin_fallback_sends.state = 'preparing' RETURNING notification_id)"
            " SELECT s.notification_id, s.state FROM tocsin_fallback_sends AS s"
            " JOIN wanted ON wanted.nid = s.notification_id"
            " WHERE s.channel = $3"
            " AND s.notification_id NOT IN (SELECT notification_id FROM taken)",
            _notifications(jobs),
            _ids(jobs),
            channel,
            self.owner,
            digest,
        )
        return {str(r["notification_id"]): r["state"] for r in rows}

    async def point_of_no_return(self, jobs: Sequence[Job], channel: str) -> set[str]:
        """Move our 'preparing' records to 'sending' for notifications still unread (and, for
        push, not acked by a tab) whose job lease we still hold; returns those ids. Nothing
        may be sent for the others."""
        acked = " AND n.delivered_at IS NULL" if channel == PUSH else ""
        rows = await self.pool.fetch(
            "UPDATE tocsin_fallback_sends AS s SET state = 'sending', updated_at = now()"
            " FROM tocsin_notifications AS n, tocsin_fallback_jobs AS j"
            " WHERE s.notification_id = ANY($1::uuid[]) AND s.channel = $2 AND s.owner = $3"
            " AND s.state = 'preparing' AND n.id = s.notification_id"
            f" AND {_STILL_WANTED}{acked}"
            " AND j.notification_id = s.notification_id AND j.channel = s.channel"
            " AND j.locked_by = $3 AND j.locked_until > now() AND j.state = 'pending'"
            " RETURNING s.notification_id",
            _notifications(jobs),
            channel,
            self.owner,
        )
        return {str(r["notification_id"]) for r in rows}

    async def mark(
        self, ids: Sequence[str], channel: str, state: str, detail: str | None = None
    ) -> None:
        """Set our send records' state: 'sent', 'unknown', 'failed', or back to 'preparing'
        (the server refused before accepting anything, so a retry may send it)."""
        await self.pool.execute(
            "UPDATE tocsin_fallback_sends SET state = $4, detail = $5, updated_at = now()"
            " WHERE notification_id = ANY($1::uuid[]) AND channel = $2 AND owner = $3",
            list(ids),
            channel,
            self.owner,
            state,
            detail,
        )

    async def drop_unsent(self, ids: Sequence[str], channel: str) -> None:
        """Delete our 'preparing' records of notifications that will not be sent."""
        await self.pool.execute(
            "DELETE FROM tocsin_fallback_sends WHERE notification_id = ANY($1::uuid[])"
            " AND channel = $2 AND owner = $3 AND state = 'preparing'",
            list(ids),
            channel,
            self.owner,
        )

    # -- ending a job -----------------------------------------------------------------------

    async def finish(
        self, jobs: Sequence[Job], state: str, outcome: str, error: str | None = None
    ) -> int:
        """done, cancelled or failed; fenced on our lease."""
        if not jobs:
            return 0
        status = await self.pool.execute(
            "UPDATE tocsin_fallback_jobs SET state = $3, outcome = $4,"
            " last_error = coalesce($5, last_error), finished_at = now(), locked_until = NULL"
            " WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND state = 'pending'",
            _ids(jobs),
            self.owner,
            state,
            outcome,
            error,
        )
        return _count(status)

    async def retry(self, jobs: Sequence[Job], delay: float, error: str) -> None:
        await self._reschedule(jobs, delay, error, attempt=True)

    async def postpone(self, jobs: Sequence[Job], delay: float) -> None:
        """Quiet hours: due again later; not an attempt."""
        await self._reschedule(jobs, delay, None, attempt=False)

    async def _reschedule(
        self, jobs: Sequence[Job], delay: float, error: str | None, attempt: bool
    ) -> None:
        await self.pool.execute(
            "UPDATE tocsin_fallback_jobs SET due_at = now() + make_interval(secs => $3),"
            " locked_by = NULL, locked_until = NULL, last_error = coalesce($4, last_error),"
            " attempts = CASE WHEN $5 THEN attempts ELSE greatest(attempts - 1, 0) END"
            " WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND state = 'pending'",
            _ids(jobs),
            self.owner,
            delay,
            error,
            attempt,
        )

    # -- gauges -----------------------------------------------------------------------------

    async def backlog(self) -> dict[str, tuple[int, int]]:
        """{channel: (pending, due)}."""
        rows = await self.pool.fetch(
            "SELECT channel, count(*) AS pending,"
            f" count(*) FILTER (WHERE due_at <= now() AND {_FREE}) AS due"  # not those in flight
            " FROM tocsin_fallback_jobs WHERE state = 'pending' GROUP BY channel"
        )
        found = {r["channel"]: (int(r["pending"]), int(r["due"])) for r in rows}
        return {channel: found.get(channel, (0, 0)) for channel in CHANNELS}
