"""gateway/store_batch.py: coalesced reads answer each caller exactly as the single-user
Repository methods do (real PostgreSQL), in few queries, and fail together."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gateway.store_batch import Coalescer, StoreBatch
from shared.models import Counts, NewNotification, Notification
from shared.repository import Repository

TIMEOUT = 30


class Counting(Repository):
    """Counts the batched queries and the keys each one carried."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.sizes: dict[str, list[int]] = {}

    def _seen(self, kind: str, keys: int) -> None:
        self.sizes.setdefault(kind, []).append(keys)

    async def backlog_many(
        self, requests: Sequence[tuple[str, int, int]]
    ) -> list[list[Notification]]:
        self._seen("backlog", len(requests))
        return await super().backlog_many(requests)

    async def counts_many(self, user_ids: Sequence[str]) -> list[Counts]:
        self._seen("counts", len(user_ids))
        return await super().counts_many(user_ids)


async def _populate(repo: Repository, users: list[str], rng: random.Random) -> None:
    now = datetime.now(UTC)
    for i in range(60):
        who = rng.sample(users, rng.randint(1, 5))
        expires = rng.choice([None, None, now - timedelta(minutes=1), now + timedelta(hours=1)])
        new = NewNotification("message:received", f"n{i}", "", expires_at=expires)
        stored = await repo.insert(new, who)
        for s in stored:
            roll = rng.random()
            if roll < 0.15:
                await repo.archive(s.notification.user_id, s.notification.id)
            elif roll < 0.35:
                await repo.mark_read(s.notification.user_id, s.notification.id)
    await repo.mark_delivered([(u, rng.randint(0, 6)) for u in rng.sample(users, 6)])
    await repo.mark_all_seen(users[0], up_to_seq=3)


async def test_each_caller_gets_what_the_single_method_returns(pool: asyncpg.Pool) -> None:
    rng = random.Random(9)
    users = [f"sb-{i}" for i in range(12)]
    repo = Counting(pool)
    await _populate(repo, users, rng)
    batch = StoreBatch(repo)
    asked = [*users, "sb-nobody", users[0], users[0]]  # unknown users and duplicates too
    cursors = [(rng.choice(asked), rng.randint(0, 25), rng.randint(1, 8)) for _ in range(200)]
    async with asyncio.timeout(TIMEOUT):
        backlogs = await asyncio.gather(*(batch.backlog(*c) for c in cursors))
        resumes, counts, latest, welcomes = await asyncio.gather(
            asyncio.gather(*(batch.resume_point(u) for u in asked)),
            asyncio.gather(*(batch.counts(u) for u in asked)),
            asyncio.gather(*(batch.latest_seq(u) for u in asked)),
            asyncio.gather(*(batch.welcome_state(u) for u in asked)),
        )
    assert backlogs == [await repo.backlog(*c) for c in cursors]
    assert any(len(b) > 1 for b in backlogs) and any(not b for b in backlogs)
    assert resumes == [await repo.resume_point(u) for u in asked]
    assert counts == [await repo.counts(u) for u in asked]
    assert latest == [await repo.latest_seq(u) for u in asked]
    assert welcomes == [(*r, c) for r, c in zip(resumes, counts, strict=True)]
    assert welcomes == [await repo.welcome_state(u) for u in asked]
    assert {(c.unread, c.unseen) for c in counts} != {(0, 0)}
    # Callers that came together were answered by one query per kind.
    assert repo.sizes == {"backlog": [len(set(cursors))], "counts": [len(set(asked))]}


async def test_a_batch_is_bounded(pool: asyncpg.Pool) -> None:
    repo = Counting(pool)
    await repo.insert(NewNotification("message:received", "x", ""), ["b-1", "b-7"])
    batch = StoreBatch(repo, max_batch=50, max_in_flight=2)
    users = [f"b-{i}" for i in range(120)]
    async with asyncio.timeout(TIMEOUT):
        counts = await asyncio.gather(*(batch.counts(u) for u in users))
    assert [c.unread for c in counts] == [1 if u in ("b-1", "b-7") else 0 for u in users]
    assert sorted(repo.sizes["counts"]) == [20, 50, 50]


async def test_a_failed_query_fails_every_caller_it_served(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    batch = StoreBatch(Repository(pool))
    await pool.close()
    async with asyncio.timeout(TIMEOUT):
        results = await asyncio.gather(
            *(batch.latest_seq(f"u{i}") for i in range(5)), return_exceptions=True
        )
    assert len(results) == 5
    assert all(isinstance(r, asyncpg.InterfaceError) for r in results)


async def test_callers_wait_for_a_free_slot_and_a_cancelled_one_leaves_the_rest() -> None:
    calls: list[list[int]] = []
    release = asyncio.Event()

    async def run(keys: list[int]) -> list[int]:
        calls.append(keys)
        await release.wait()
        return [k * 10 for k in keys]

    coalesce: Coalescer[int, int] = Coalescer(run, max_batch=3, max_in_flight=1)
    async with asyncio.timeout(TIMEOUT):
        first = [asyncio.create_task(coalesce(k)) for k in (1, 2, 2)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        later = [asyncio.create_task(coalesce(k)) for k in (3, 4, 5, 6)]
        await asyncio.sleep(0)
        later[0].cancel()
        assert calls == [[1, 2]] and coalesce.pending == 4  # one query in flight at most
        release.set()
        assert await asyncio.gather(*first) == [10, 20, 20]
        assert await asyncio.gather(*later[1:]) == [40, 50, 60]
    assert calls == [[1, 2], [4, 5, 6]]  # the cancelled caller's key was not asked


async def test_an_error_reaches_every_caller_and_the_next_batch_runs() -> None:
    fail = True

    async def run(keys: list[str]) -> list[str]:
        if fail:
            raise RuntimeError("store down")
        return keys

    coalesce: Coalescer[str, str] = Coalescer(run, window=0.001)
    async with asyncio.timeout(TIMEOUT):
        results = await asyncio.gather(*(coalesce(k) for k in "abc"), return_exceptions=True)
        assert [str(r) for r in results] == ["store down"] * 3
        fail = False
        assert await asyncio.gather(*(coalesce(k) for k in "ab")) == ["a", "b"]


async def test_close_cancels_waiting_callers() -> None:
    async def run(keys: list[int]) -> list[int]:
        await asyncio.sleep(3600)
        return keys

    coalesce: Coalescer[int, int] = Coalescer(run, max_batch=1, max_in_flight=1)
    async with asyncio.timeout(TIMEOUT):
        tasks = [asyncio.create_task(coalesce(k)) for k in range(3)]
        await asyncio.sleep(0.01)
        await coalesce.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


def test_limits_are_checked() -> None:
    async def run(keys: list[int]) -> list[int]:
        return keys

    with pytest.raises(ValueError):
        Coalescer(run, max_batch=0)
