"""PostgreSQL repository (asyncpg). Every query Tocsin runs against the store lives here."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared import fallback_jobs, serialization
from shared.config import StoreSettings
from shared.fallback_rules import EMAIL, PUSH
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


_JSONB_VERSION = b"\x01"  # jsonb's binary form: a version byte, then the JSON text


def _jsonb_out(value: Any) -> bytes:
    return _JSONB_VERSION + serialization.dumps(value)


def _jsonb_in(data: bytes) -> Any:
    return serialization.loads_stored(data[1:])  # checked per row in Notification.from_record


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary, so no str round trip per value, and composite rows (a replay in _SEND) decode.
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_out, decoder=_jsonb_in, schema="pg_catalog", format="binary"
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


# The batched reads: one row per input user, numbered by u.ord (input order, duplicates kept).
_USERS = "unnest($1::text[]) WITH ORDINALITY AS u(user_id, ord)"
# `counts` for each u: unread and unseen, not archived, not expired.
_COUNTS_OF_U = (
    "CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE c.read_at IS NULL) AS unread,"
    " count(*) FILTER (WHERE c.seen_at IS NULL) AS unseen FROM tocsin_notifications AS c"
    " WHERE c.user_id = u.user_id AND c.archived_at IS NULL"
    " AND (c.read_at IS NULL OR c.seen_at IS NULL)"
    " AND (c.expires_at IS NULL OR c.expires_at > now())) AS k"
)

# A send is one call (migration 0005): one round trip, one transaction, every row and job.
# A new row is what was sent plus these four columns; a replay is read whole.
_SEND = (
    "SELECT created, (note).id::text AS id, (note).user_id, (note).seq, (note).created_at,"
    " CASE WHEN NOT created THEN note END AS replay FROM tocsin_send("
    "$1::text[], $2, $3, $4, $5, $6, $7, $8, $9::text[], $10::float8[], $11::boolean[], $12)"
)


@dataclass(frozen=True)
class FeedPage:
    notifications: list[Notification]
    next_cursor: int | None


class Repository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._sends = _SendBatcher(self)

    async def insert(
        self,
        new: NewNotification,
        user_ids: Sequence[str],
        fallback: fallback_jobs.FallbackRequest | None = None,
    ) -> list[Stored]:
        """Store one notification for each user, atomically; returns rows in input order.

        Each user's seq is bumped under that user's row lock, so seqs are contiguous and
        commit in order; the fallback jobs commit with the rows. Users that already hold a
        notification under the idempotency key get it back (`created=False`) and no new seq.
        A small send shares its transaction with the other small sends made at the same
        moment (group commit, _SendBatcher); a large one is one call of tocsin_send.
        """
        if len(user_ids) <= SHARED_SEND_MAX_USERS:
            return await self._sends.insert(new, user_ids, fallback)
        return await self.insert_alone(new, user_ids, fallback)

    async def insert_alone(
        self,
        new: NewNotification,
        user_ids: Sequence[str],
        fallback: fallback_jobs.FallbackRequest | None = None,
    ) -> list[Stored]:
        """`insert` in a transaction of its own: one call of tocsin_send (migration 0005)."""
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
        sent = _as_sent(new)
        found = {r["user_id"]: _stored(sent, r) for r in rows}
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

    # -- batched reads: one query for many users (gateway/store_batch.py) -------------------
    # Each returns one answer per input, in input order (duplicates allowed), equal to what
    # the single-user method returns for it; each is one statement, so one snapshot.

    async def backlog_many(
        self, requests: Sequence[tuple[str, int, int]]
    ) -> list[list[Notification]]:
        """`backlog(user_id, after_seq, limit)` for each (user_id, after_seq, limit)."""
        found: list[list[Notification]] = [[] for _ in requests]
        if not requests:
            return found
        rows = await self.pool.fetch(
            "SELECT c.ord, n.* FROM unnest($1::text[], $2::bigint[], $3::bigint[])"
            "  WITH ORDINALITY AS c(user_id, after_seq, lim, ord)"
            " CROSS JOIN LATERAL (SELECT * FROM tocsin_notifications AS t"
            "  WHERE t.user_id = c.user_id AND t.seq > c.after_seq ORDER BY t.seq LIMIT c.lim) AS n"
            " ORDER BY c.ord, n.seq",
            [user for user, _, _ in requests],
            [after for _, after, _ in requests],
            [limit for _, _, limit in requests],
        )
        for r in rows:
            found[r["ord"] - 1].append(Notification.from_record(r))
        return found

    async def resume_points(self, user_ids: Sequence[str]) -> list[tuple[int, int]]:
        """`resume_point(user_id)` for each user."""
        return [
            (cursor, latest)
            for cursor, latest, _ in await self._welcome(user_ids, with_counts=False)
        ]

    async def counts_many(self, user_ids: Sequence[str]) -> list[Counts]:
        """`counts(user_id)` for each user."""
        if not user_ids:
            return []
        rows = await self.pool.fetch(
            f"SELECT k.unread, k.unseen FROM {_USERS} {_COUNTS_OF_U} ORDER BY u.ord",
            list(user_ids),
        )
        return [Counts(unread=r["unread"], unseen=r["unseen"]) for r in rows]

    async def latest_seqs(self, user_ids: Sequence[str]) -> list[int]:
        """`latest_seq(user_id)` for each user."""
        if not user_ids:
            return []
        rows = await self.pool.fetch(
            f"SELECT coalesce(s.last_seq, 0) AS latest FROM {_USERS}"
            " LEFT JOIN tocsin_user_seq AS s ON s.user_id = u.user_id ORDER BY u.ord",
            list(user_ids),
        )
        return [int(r["latest"]) for r in rows]

    async def welcome_state(self, user_id: str) -> tuple[int, int, Counts]:
        """(cursor, newest seq, counts): `resume_point` and `counts` in one query."""
        [state] = await self.welcome_states([user_id])
        return state

    async def welcome_states(self, user_ids: Sequence[str]) -> list[tuple[int, int, Counts]]:
        """(cursor, newest seq, counts) for each user: `resume_point` and `counts` in one
        query and one snapshot (what a socket's welcome needs)."""
        return [
            (cursor, latest, counts)
            for cursor, latest, counts in await self._welcome(user_ids, with_counts=True)
            if counts is not None
        ]

    async def _welcome(
        self, user_ids: Sequence[str], *, with_counts: bool
    ) -> list[tuple[int, int, Counts | None]]:
        if not user_ids:
            return []
        rows = await self.pool.fetch(
            "SELECT coalesce(s.last_seq, 0) AS latest,"
            " (SELECT min(f.seq) FROM tocsin_notifications AS f"
            "  WHERE f.user_id = u.user_id AND f.delivered_at IS NULL) AS first_undelivered"
            + (", k.unread, k.unseen" if with_counts else "")
            + f" FROM {_USERS} LEFT JOIN tocsin_user_seq AS s ON s.user_id = u.user_id"
            + (f" {_COUNTS_OF_U}" if with_counts else "")
            + " ORDER BY u.ord",
            list(user_ids),
        )
        found: list[tuple[int, int, Counts | None]] = []
        for r in rows:
            latest, first = int(r["latest"]), r["first_undelivered"]
            counts = Counts(r["unread"], r["unseen"]) if with_counts else None
            found.append((latest if first is None else int(first) - 1, latest, counts))
        return found

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


def _stored(sent: Notification, row: asyncpg.Record) -> Stored:
    """A row of _SEND as a Notification: a new one is what was sent (`sent`, from _as_sent;
    its data was checked before the insert) with the row's id, user, seq and time, a replay
    the stored row."""
    if not row["created"]:
        return Stored(Notification.from_record(row["replay"]), False)
    return Stored(
        sent.for_recipient(row["id"], row["user_id"], row["seq"], row["created_at"]), True
    )


def _as_sent(new: NewNotification) -> Notification:
    """What every new row of a send holds; _stored fills in the rest."""
    return Notification(
        id="",
        user_id="",
        seq=0,
        type=new.type,
        title=new.title,
        body=new.body,
        action_url=new.action_url,
        data=new.data,
        created_at=datetime.min,
        expires_at=new.expires_at,
    )


# -- group commit of small sends ----------------------------------------------------------

SHARED_SEND_MAX_USERS = 50  # recipients: a send this small may share a transaction
SHARED_SEND_MAX_ROWS = 1000  # notifications per shared transaction
SHARED_SEND_IN_FLIGHT = 4  # shared transactions at once; sends arriving meanwhile wait

_SEND_MANY = (
    "SELECT ord, created, (note).id::text AS id, (note).user_id, (note).seq, (note).created_at,"
    " CASE WHEN NOT created THEN note END AS replay FROM tocsin_send_many("
    "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[],"
    " $8::timestamptz[], $9::float8[], $10::boolean[], $11::float8[], $12::boolean[],"
    " $13::text[])"
)


@dataclass
class _Send:
    new: NewNotification
    user_ids: Sequence[str]
    users: list[str]  # distinct, in input order
    plan: fallback_jobs.FallbackRequest
    future: asyncio.Future[list[Stored]]

    def pairs(self) -> set[tuple[str, str]]:
        key = self.new.idempotency_key
        return set() if key is None else {(u, key) for u in self.users}


class _SendBatcher:
    """Group commit: small sends that arrive while others are being stored go into the next
    transaction together, one call of tocsin_send_many for all of them (at most
    SHARED_SEND_MAX_ROWS rows, SHARED_SEND_IN_FLIGHT calls at once). Each caller gets its own
    rows, exactly as from a send alone. A store outage fails every send of the transaction
    (nothing of it was stored); any other failure runs each of its sends alone, so one bad
    send fails only itself. A (user, idempotency key) pair is in one transaction at most."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self._queue: list[_Send] = []
        self._scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()

    async def insert(
        self,
        new: NewNotification,
        user_ids: Sequence[str],
        fallback: fallback_jobs.FallbackRequest | None,
    ) -> list[Stored]:
        future: asyncio.Future[list[Stored]] = asyncio.get_running_loop().create_future()
        plan = fallback or fallback_jobs.NO_FALLBACK
        self._queue.append(_Send(new, user_ids, list(dict.fromkeys(user_ids)), plan, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if self._scheduled or not self._queue or len(self._in_flight) >= SHARED_SEND_IN_FLIGHT:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        while self._queue and len(self._in_flight) < SHARED_SEND_IN_FLIGHT:
            batch = self._take()
            if not batch:
                return
            task = asyncio.create_task(self._store(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._done)

    def _take(self) -> list[_Send]:
        """Oldest first, within the row limit, no (user, key) pair twice; the rest wait."""
        batch: list[_Send] = []
        rows = 0
        pairs: set[tuple[str, str]] = set()
        left: list[_Send] = []
        for send in self._queue:
            if send.future.done():
                continue  # its caller gave up before it was stored
            mine = send.pairs()
            if rows + len(send.users) > SHARED_SEND_MAX_ROWS or mine & pairs:
                left.append(send)
                continue
            batch.append(send)
            rows += len(send.users)
            pairs |= mine
        self._queue = left
        return batch

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._schedule()

    async def _store(self, batch: list[_Send]) -> None:
        try:
            results = await _send_many(self._repo.pool, batch)
        except asyncio.CancelledError:
            for send in batch:
                send.future.cancel()
            raise
        except STORE_ERRORS as exc:
            for send in batch:
                if not send.future.done():
                    send.future.set_exception(exc)
            return
        except Exception:
            if len(batch) > 1:
                logger.exception("a shared send failed; storing its %d sends alone", len(batch))
            await asyncio.gather(*(self._alone(send) for send in batch))
            return
        for send, stored in zip(batch, results, strict=True):
            if not send.future.done():
                send.future.set_result(stored)

    async def _alone(self, send: _Send) -> None:
        try:
            stored = await self._repo.insert_alone(send.new, send.user_ids, send.plan)
        except Exception as exc:
            if not send.future.done():
                send.future.set_exception(exc)
        else:
            if not send.future.done():
                send.future.set_result(stored)


async def _send_many(pool: asyncpg.Pool, batch: list[_Send]) -> list[list[Stored]]:
    """One call of tocsin_send_many for every send of the batch; each send's rows, one per
    distinct user in input order (as insert_alone answers)."""
    rows: list[tuple[_Send, str]] = [(send, user) for send in batch for user in send.users]
    jobs = [{job.channel: job for job in send.plan.jobs} for send, _ in rows]
    found = await pool.fetch(
        _SEND_MANY,
        [user for _, user in rows],
        [send.new.type for send, _ in rows],
        [send.new.title for send, _ in rows],
        [send.new.body for send, _ in rows],
        [send.new.action_url for send, _ in rows],
        [send.new.data for send, _ in rows],
        [send.new.idempotency_key for send, _ in rows],
        [send.new.expires_at for send, _ in rows],
        [j[PUSH].delay if PUSH in j else None for j in jobs],
        [j[PUSH].default_on if PUSH in j else None for j in jobs],
        [j[EMAIL].delay if EMAIL in j else None for j in jobs],
        [j[EMAIL].default_on if EMAIL in j else None for j in jobs],
        [send.plan.email for send, _ in rows],
    )
    sent = {id(send): _as_sent(send.new) for send in batch}
    by_row: dict[int, Stored] = {}
    for r in found:
        by_row[r["ord"] - 1] = _stored(sent[id(rows[r["ord"] - 1][0])], r)
    results: list[list[Stored]] = []
    start = 0
    for send in batch:
        mine = {send.users[i]: by_row[start + i] for i in range(len(send.users))}
        results.append([mine[u] for u in send.users])
        start += len(send.users)
    return results


def _affected(status: str) -> int:
    """asyncpg returns the command tag, e.g. 'UPDATE 3'."""
    return int(status.rsplit(" ", 1)[-1])
