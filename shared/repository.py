"""PostgreSQL repository (asyncpg). Every query Tocsin runs against the store lives here."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared import fallback_jobs, serialization
from shared.config import StoreSettings
from shared.models import Counts, NewNotification, Notification, Stored

logger = logging.getLogger("tocsin.store")

_NOT_EXPIRED = "(expires_at IS NULL OR expires_at > now())"
DB_CONNECT_TIMEOUT = 5.0  # seconds; a request waits at most this long for a new connection

# Errors that mean "the store cannot be reached", as opposed to a bug in a query.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: serialization.dumps(value).decode(),
        decoder=serialization.loads_stored,  # checked per row in Notification.from_record
        schema="pg_catalog",
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release: asyncpg already rolled back any open transaction. Tocsin changes no
    session state (no SET, LISTEN, cursors or session advisory locks), so the default reset
    query (one more round trip for every query run through the pool) is skipped."""


async def create_pool(
    database_url: str, min_size: int = 2, max_size: int = 10, connect_timeout: float = 10
) -> asyncpg.Pool:
    """A pool of connections; min_size=0 opens none until first use."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=30,
        timeout=connect_timeout,
    )
    assert pool is not None
    return pool


async def open_pool(store: StoreSettings) -> asyncpg.Pool:
    """The services' pool; empty (connecting on first use) if PostgreSQL is down at start-up,
    so the process still starts, reports not ready, and recovers by itself."""
    try:
        return await create_pool(
            store.database_url, store.pool_min, store.pool_max, DB_CONNECT_TIMEOUT
        )
    except STORE_ERRORS as exc:
        logger.warning("PostgreSQL unreachable at start-up (%r); answering 503 until it is", exc)
        return await create_pool(store.database_url, 0, store.pool_max, DB_CONNECT_TIMEOUT)


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError):
        return None


# A send is one call (migration 0005): one round trip, one transaction, every row and job.
_SEND = (
    "SELECT created, (note).* FROM tocsin_send("
    "$1::text[], $2, $3, $4, $5, $6, $7, $8, $9::text[], $10::float8[], $11::boolean[], $12)"
)


@dataclass(frozen=True)
class FeedPage:
    notifications: list[Notification]
    next_cursor: int | None


class Repository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def insert(
        self,
        new: NewNotification,
        user_ids: Sequence[str],
        fallback: fallback_jobs.FallbackRequest | None = None,
    ) -> list[Stored]:
        """Store one notification for each user, atomically; returns rows in input order.

        One call of tocsin_send (migration 0005), so one round trip: each user's seq is bumped
        under that user's row lock, so seqs are contiguous and commit in order; the fallback
        jobs commit with the rows. Users that already hold a notification under the
        idempotency key get it back (`created=False`) and no new seq.
        """
        plan = fallback or fallback_jobs.NO_FALLBACK
        rows = await self.pool.fetch(
            _SEND,
            sorted(set(user_ids)),
            new.type,
            new.title,
            new.body,
            new.action_url,
            new.data,
            new.idempotency_key,
            new.expires_at,
            [job.channel for job in plan.jobs],
            [job.delay for job in plan.jobs],
            [job.default_on for job in plan.jobs],
            plan.email,
        )
        found = {r["user_id"]: Stored(Notification.from_record(r), r["created"]) for r in rows}
        return [found[u] for u in dict.fromkeys(user_ids)]

    async def backlog(self, user_id: str, after_seq: int, limit: int) -> list[Notification]:
        """Every row with seq > after_seq, oldest first, archived and expired included so the
        caller's cursor can step over them (the caller filters with `deliverable`)."""
        rows = await self.pool.fetch(
            "SELECT * FROM tocsin_notifications WHERE user_id = $1 AND seq > $2"
            " ORDER BY seq LIMIT $3",
            user_id,
            after_seq,
            limit,
        )
        return [Notification.from_record(r) for r in rows]

    async def resume_point(self, user_id: str) -> tuple[int, int]:
        """(cursor for a brand-new client, newest seq), read in one snapshot.

        The cursor sits just before the first undelivered notification, or at the newest
        seq when everything was delivered."""
        row = await self.pool.fetchrow(
            "SELECT coalesce(s.last_seq, 0) AS latest,"
            " (SELECT min(seq) FROM tocsin_notifications"
            "  WHERE user_id = $1 AND delivered_at IS NULL) AS first_undelivered"
            " FROM (SELECT $1::text AS user_id) AS u"
            " LEFT JOIN tocsin_user_seq AS s ON s.user_id = u.user_id",
            user_id,
        )
        assert row is not None
        latest = int(row["latest"])
        first = row["first_undelivered"]
        return (latest if first is None else int(first) - 1), latest

    async def feed(
        self,
        user_id: str,
        *,
        before_seq: int | None,
        limit: int,
        unread_only: bool = False,
        types: Sequence[str] = (),
    ) -> FeedPage:
        """Newest first, excluding archived and expired; cursor is the last seq returned."""
        clauses = ["user_id = $1", "archived_at IS NULL", _NOT_EXPIRED]
        args: list[Any] = [user_id]
        if before_seq is not None:
            args.append(before_seq)
            clauses.append(f"seq < ${len(args)}")
        if unread_only:
            clauses.append("read_at IS NULL")
        if types:
            args.append(list(types))
            clauses.append(f"type = ANY(${len(args)}::text[])")
        args.append(limit + 1)
        rows = await self.pool.fetch(
            f"SELECT * FROM tocsin_notifications WHERE {' AND '.join(clauses)}"
            f" ORDER BY seq DESC LIMIT ${len(args)}",
            *args,
        )
        items = [Notification.from_record(r) for r in rows[:limit]]
        next_cursor = items[-1].seq if len(rows) > limit else None
        return FeedPage(items, next_cursor)

    async def counts(self, user_id: str) -> Counts:
        row = await self.pool.fetchrow(
            "SELECT count(*) FILTER (WHERE read_at IS NULL) AS unread,"
            " count(*) FILTER (WHERE seen_at IS NULL) AS unseen"
            " FROM tocsin_notifications WHERE user_id = $1 AND archived_at IS NULL"
            f" AND (read_at IS NULL OR seen_at IS NULL) AND {_NOT_EXPIRED}",
            user_id,
        )
        assert row is not None
        return Counts(unread=row["unread"], unseen=row["unseen"])

    async def latest_seq(self, user_id: str) -> int:
        value = await self.pool.fetchval(
            "SELECT last_seq FROM tocsin_user_seq WHERE user_id = $1", user_id
        )
        return int(value or 0)

    async def get(self, user_id: str, notification_id: str) -> Notification | None:
        ident = _as_uuid(notification_id)
        if ident is None:
            return None
        row = await self.pool.fetchrow(
            "SELECT * FROM tocsin_notifications WHERE user_id = $1 AND id = $2", user_id, ident
        )
        return None if row is None else Notification.from_record(row)

    async def mark_delivered(self, acks: Sequence[tuple[str, int]]) -> int:
        """Batched cumulative acks: each (user, seq) marks that user's rows up to seq."""
        if not acks:
            return 0
        status = await self.pool.execute(
            "UPDATE tocsin_notifications AS n SET delivered_at = now()"
            " FROM unnest($1::text[], $2::bigint[]) AS a(user_id, seq)"
            " WHERE n.user_id = a.user_id AND n.seq <= a.seq AND n.delivered_at IS NULL",
            [user for user, _ in acks],
            [seq for _, seq in acks],
        )
        return _affected(status)

    async def _update_one(
        self, user_id: str, notification_id: str, assignments: str
    ) -> Notification | None:
        ident = _as_uuid(notification_id)
        if ident is None:
            return None
        row = await self.pool.fetchrow(
            f"UPDATE tocsin_notifications SET {assignments}"
            " WHERE user_id = $1 AND id = $2 RETURNING *",
            user_id,
            ident,
        )
        return None if row is None else Notification.from_record(row)

    async def mark_read(self, user_id: str, notification_id: str) -> Notification | None:
        """None when the user holds no such notification (never reveals others' ids)."""
        found = await self._update_one(
            user_id,
            notification_id,
            "read_at = coalesce(read_at, now()), seen_at = coalesce(seen_at, now())",
        )
        if found is not None:  # a read notification is never pushed or emailed
            await fallback_jobs.cancel_notifications(self.pool, user_id, [found.id], "read")
        return found

    async def mark_unread(self, user_id: str, notification_id: str) -> Notification | None:
        return await self._update_one(user_id, notification_id, "read_at = NULL")

    async def archive(self, user_id: str, notification_id: str) -> Notification | None:
        found = await self._update_one(
            user_id, notification_id, "archived_at = coalesce(archived_at, now())"
        )
        if found is not None:
            await fallback_jobs.cancel_notifications(self.pool, user_id, [found.id], "archived")
        return found

    async def mark_all_read(self, user_id: str, up_to_seq: int | None = None) -> int:
        status = await self.pool.execute(
            "UPDATE tocsin_notifications SET read_at = now(), seen_at = coalesce(seen_at, now())"
            " WHERE user_id = $1 AND read_at IS NULL AND archived_at IS NULL"
            " AND ($2::bigint IS NULL OR seq <= $2)",
            user_id,
            up_to_seq,
        )
        if _affected(status):
            await fallback_jobs.cancel_read(self.pool, user_id)
        return _affected(status)

    async def mark_all_seen(self, user_id: str, up_to_seq: int | None = None) -> int:
        status = await self.pool.execute(
            "UPDATE tocsin_notifications SET seen_at = now()"
            " WHERE user_id = $1 AND seen_at IS NULL AND archived_at IS NULL"
            " AND ($2::bigint IS NULL OR seq <= $2)",
            user_id,
            up_to_seq,
        )
        return _affected(status)

    async def mark_published(self, ids: Sequence[str]) -> int:
        """Outbox: these notifications reached their channels (one statement for the batch)."""
        if not ids:
            return 0
        status = await self.pool.execute(
            "UPDATE tocsin_notifications SET published_at = now()"
            " WHERE id = ANY($1::uuid[]) AND published_at IS NULL",
            list(ids),
        )
        return _affected(status)

    @asynccontextmanager
    async def claim_unpublished(
        self, older_than: float, limit: int, ids: Sequence[str] | None = None
    ) -> AsyncIterator[list[Notification]]:
        """Outbox: lock up to `limit` rows left unpublished for over `older_than` seconds, oldest
        first (only among `ids` when given), and yield them. Rows another transaction holds are
        skipped, so concurrent claimers never share one. They are marked published when the
        block ends normally; an exception rolls back and leaves them for the next claim."""
        where = "published_at IS NULL AND created_at < now() - make_interval(secs => $1)"
        args: list[Any] = [older_than, limit]
        if ids is not None:
            args.append(list(ids))
            where += " AND id = ANY($3::uuid[])"
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT * FROM tocsin_notifications WHERE {where}"
                " ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                *args,
            )
            yield [Notification.from_record(r) for r in rows]
            if rows:
                await conn.execute(
                    "UPDATE tocsin_notifications SET published_at = now() WHERE id = ANY($1)",
                    [r["id"] for r in rows],
                )

    async def newer_for_users(
        self, cursors: Sequence[tuple[str, int]], per_user: int, limit: int
    ) -> list[Notification]:
        """For each (user, seq), that user's rows after seq, in one query (the gateway's store
        poll while its pub/sub link is down). At most `per_user` rows each and `limit` in all,
        every user's earlier rows before anyone's later ones, so each user gets a gap-free run
        from its cursor. Sorted by user, then seq; archived and expired rows included."""
        if not cursors:
            return []
        rows = await self.pool.fetch(
            "SELECT n.* FROM unnest($1::text[], $2::bigint[]) AS c(user_id, after_seq)"
            " CROSS JOIN LATERAL (SELECT t.*, row_number() OVER (ORDER BY t.seq) AS rank"
            "  FROM tocsin_notifications AS t WHERE t.user_id = c.user_id AND t.seq > c.after_seq"
            "  ORDER BY t.seq LIMIT $3) AS n"
            " ORDER BY n.rank, n.user_id LIMIT $4",
            [user for user, _ in cursors],
            [seq for _, seq in cursors],
            per_user,
            limit,
        )
        found = [Notification.from_record(r) for r in rows]
        return sorted(found, key=lambda n: (n.user_id, n.seq))


def _affected(status: str) -> int:
    """asyncpg returns the command tag, e.g. 'UPDATE 3'."""
    return int(status.rsplit(" ", 1)[-1])
