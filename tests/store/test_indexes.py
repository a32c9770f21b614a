"""Every query the store runs on tocsin_notifications gets an index plan (migration 0006 keeps
only the indexes these need): each repository method runs against a filled, analysed table,
its statements are recorded as sent, and EXPLAIN of each must not scan the table whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import orjson

from shared import fallback_jobs
from shared.repository import Repository

USERS = 400
ROWS_EACH = 100  # 40,000 rows: enough that a sequential scan never looks cheaper


class Recording:
    """A pool (or connection) that keeps every statement it runs, with its arguments."""

    def __init__(self, target: Any, seen: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._target = target
        self.seen = seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    async def fetch(self, query: str, *args: Any) -> Any:
        self.seen.append((query, args))
        return await self._target.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        self.seen.append((query, args))
        return await self._target.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.seen.append((query, args))
        return await self._target.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> Any:
        self.seen.append((query, args))
        return await self._target.execute(query, *args)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Recording]:
        async with self._target.acquire() as conn:
            yield Recording(conn, self.seen)


async def fill(pool: asyncpg.Pool) -> None:
    """USERS users of ROWS_EACH rows each, in the states a live store holds: mostly delivered,
    read and seen, a tail unread, some archived, a few unpublished, four types."""
    await pool.execute(
        "INSERT INTO tocsin_notifications (user_id, seq, type, title, body, created_at,"
        " delivered_at, seen_at, read_at, archived_at, published_at)"
        " SELECT 'ix-' || u, s, (ARRAY['message:received', 'task:assigned', 'system:alert',"
        "  'order:status_changed'])[1 + s % 4], 't', 'b', now() - make_interval(secs => 1000 - s),"
        " CASE WHEN s <= 90 THEN now() END, CASE WHEN s <= 85 THEN now() END,"
        " CASE WHEN s <= 80 THEN now() END, CASE WHEN s % 17 = 0 THEN now() END,"
        " CASE WHEN s <= 98 THEN now() END"
        " FROM generate_series(1, $1) AS u, generate_series(1, $2) AS s",
        USERS,
        ROWS_EACH,
    )
    await pool.execute(
        "INSERT INTO tocsin_user_seq (user_id, last_seq)"
        " SELECT 'ix-' || u, $2 FROM generate_series(1, $1) AS u",
        USERS,
        ROWS_EACH,
    )
    await pool.execute("ANALYZE tocsin_notifications, tocsin_user_seq")


async def every_query(pool: asyncpg.Pool) -> list[tuple[str, tuple[Any, ...]]]:
    seen: list[tuple[str, tuple[Any, ...]]] = []
    recording = Recording(pool, seen)
    repo = Repository(cast(asyncpg.Pool, recording))
    user, others = "ix-7", ["ix-8", "ix-9", "ix-10"]
    some_id = str(
        await pool.fetchval(
            "SELECT id FROM tocsin_notifications WHERE user_id = $1 AND seq = 95", user
        )
    )
    await repo.backlog(user, 90, 50)
    await repo.resume_point(user)
    await repo.feed(user, before_seq=None, limit=20)
    await repo.feed(user, before_seq=60, limit=20, unread_only=True)
    await repo.feed(user, before_seq=None, limit=20, types=["task:assigned"])
    await repo.counts(user)
    await repo.latest_seq(user)
    await repo.get(user, some_id)
    await repo.mark_delivered([(user, 95), (others[0], 92)])
    await repo.mark_read(user, some_id)
    await repo.mark_unread(user, some_id)
    await repo.archive(user, some_id)
    await repo.mark_all_read(user, 99)
    await repo.mark_all_seen(others[0])
    await repo.mark_published([some_id])
    async with repo.claim_unpublished(0, 10):
        pass
    async with repo.claim_unpublished(0, 10, [some_id]):
        pass
    await repo.backlog_many([(u, 90, 50) for u in others])
    await repo.resume_points(others)
    await repo.counts_many(others)
    await repo.latest_seqs(others)
    await repo.welcome_states(others)
    await repo.newer_for_users([(u, 95) for u in others], 10, 100)
    await fallback_jobs.cancel_read(recording, user)
    return seen


def seq_scans(plan: Any) -> list[str]:
    """The relations a plan scans whole."""
    found = []
    if plan.get("Node Type") == "Seq Scan":
        found.append(plan.get("Relation Name", "?"))
    for child in plan.get("Plans", []):
        found.extend(seq_scans(child))
    return found


async def test_every_store_query_on_notifications_uses_an_index(pool: asyncpg.Pool) -> None:
    await fill(pool)
    statements = await every_query(pool)
    touching = [s for s in statements if "tocsin_notifications" in s[0]]
    assert len(touching) >= 20
    async with pool.acquire() as conn:
        for query, args in touching:
            raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args)
            plan = (orjson.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            assert "tocsin_notifications" not in seq_scans(plan), (query, orjson.dumps(plan))


async def test_the_indexes_are_the_ones_the_queries_need(pool: asyncpg.Pool) -> None:
    names = {
        r["indexname"]
        for r in await pool.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'tocsin_notifications'"
        )
    }
    assert names == {
        "tocsin_notifications_pkey",
        "tocsin_notifications_user_seq",
        "tocsin_notifications_idempotency",
        "tocsin_notifications_unread_or_unseen",
        "tocsin_notifications_undelivered",
        "tocsin_notifications_unpublished",
    }
