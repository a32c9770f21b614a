"""The gateway's per-socket store reads, coalesced: calls that arrive together (in one loop
tick, or within `window` seconds) are answered by one query per kind for all of them.

A connect storm (10,000 tabs resuming at once) otherwise runs one backlog, resume point and
count query per socket. `StoreBatch` has the signatures of the Repository methods it covers
(`backlog`, `resume_point`, `counts`, `latest_seq`, and `welcome_state`, the two reads of a
welcome in one), so Session and Connection take either. Each caller gets what the
Repository's single-user method would have returned; a failed query fails every caller it
served, with the same exception; a query covers at most `max_batch` callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from shared.models import Counts, Notification
from shared.repository import Repository

logger = logging.getLogger("tocsin.gateway.store_batch")

MAX_BATCH = 500  # callers per query: bounds one statement's arrays and its result
MAX_IN_FLIGHT = 4  # queries of one kind at once; callers arriving meanwhile wait for the next

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """Collects keys from concurrent callers and answers them with `run(keys)` (one answer
    per key, in order). Equal keys waiting together share one slot in the query."""

    def __init__(
        self,
        run: Callable[[list[K]], Awaitable[list[V]]],
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
        window: float = 0.0,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1 or window < 0:
            raise ValueError("max_batch and max_in_flight must be >= 1, window >= 0")
        self._run = run
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._window = window
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        self._schedule()
        return await future

    @property
    def pending(self) -> int:
        """Distinct keys waiting for a query."""
        return len(self._waiting)

    def _schedule(self) -> None:
        if self._scheduled or not self._waiting or len(self._tasks) >= self._max_in_flight:
            return
        self._scheduled = True
        loop = asyncio.get_running_loop()
        if self._window:
            loop.call_later(self._window, self._flush)
        else:
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        keys = iter(list(self._waiting))  # oldest first
        while self._waiting and len(self._tasks) < self._max_in_flight:
            batch: dict[K, list[asyncio.Future[V]]] = {}
            for key in keys:
                futures = self._waiting.pop(key)
                if not all(f.done() for f in futures):  # else every caller gave up
                    batch[key] = futures
                    if len(batch) == self._max_batch:
                        break
            if not batch:
                return
            task = asyncio.create_task(self._answer(batch))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._schedule()

    async def _answer(self, batch: dict[K, list[asyncio.Future[V]]]) -> None:
        keys = list(batch)
        try:
            answers = await self._run(keys)
            if len(answers) != len(keys):
                raise RuntimeError(f"batched query answered {len(answers)} of {len(keys)} keys")
        except asyncio.CancelledError:
            self._cancel(batch)
            raise
        except Exception as exc:  # every caller of this batch sees the failure
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for key, answer in zip(keys, answers, strict=True):
            for future in batch[key]:
                if not future.done():
                    future.set_result(answer)

    async def close(self) -> None:
        """Cancel the queries in flight (their callers get CancelledError) and fail those
        still waiting."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        waiting, self._waiting = self._waiting, {}
        self._cancel(waiting)

    @staticmethod
    def _cancel(batch: dict[K, list[asyncio.Future[V]]]) -> None:
        for futures in batch.values():
            for future in futures:
                future.cancel()  # no-op when already done


class StoreBatch:
    """Drop-in for the Repository's per-socket reads (`backlog`, `resume_point`, `counts`,
    `latest_seq`), each coalesced across the sockets asking at the same moment."""

    def __init__(
        self,
        repo: Repository,
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
        window: float = 0.0,
    ) -> None:
        self.repo = repo

        def coalesce(run: Callable[[list[K]], Awaitable[list[V]]]) -> Coalescer[K, V]:
            return Coalescer(run, max_batch=max_batch, max_in_flight=max_in_flight, window=window)

        self._backlog = coalesce(repo.backlog_many)
        self._resume = coalesce(repo.resume_points)
        self._counts = coalesce(repo.counts_many)
        self._latest = coalesce(repo.latest_seqs)
        self._welcome = coalesce(repo.welcome_states)

    async def backlog(self, user_id: str, after_seq: int, limit: int) -> list[Notification]:
        """As Repository.backlog. Callers with the same arguments share one list: do not
        mutate it."""
        return await self._backlog((user_id, after_seq, limit))

    async def resume_point(self, user_id: str) -> tuple[int, int]:
        return await self._resume(user_id)

    async def counts(self, user_id: str) -> Counts:
        return await self._counts(user_id)

    async def latest_seq(self, user_id: str) -> int:
        return await self._latest(user_id)

    async def welcome_state(self, user_id: str) -> tuple[int, int, Counts]:
        """(cursor, newest seq, counts): `resume_point` and `counts` in one read."""
        return await self._welcome(user_id)

    async def close(self) -> None:
        """Cancel every query in flight and every caller still waiting (shutdown)."""
        await asyncio.gather(
            self._backlog.close(),
            self._resume.close(),
            self._counts.close(),
            self._latest.close(),
            self._welcome.close(),
        )
