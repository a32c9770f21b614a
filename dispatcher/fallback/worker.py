"""The worker loop: claim due jobs up to the concurrency, run each as a task, repeat.

Any number of workers may run against one database (claims skip what others hold). On stop,
no new job is claimed and the ones in flight finish (bounded); a job cut short keeps its lease
until it runs out, then another worker takes it over (docs/fallback.md: crashes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable

from dispatcher.fallback import email_jobs, metrics, push_jobs
from dispatcher.fallback.context import Context
from shared.repository import STORE_ERRORS

logger = logging.getLogger("tocsin.worker")

BACKLOG_INTERVAL = 5.0  # seconds between reads of the queued/due gauges
STORE_BACKOFF = 2.0  # seconds to wait after PostgreSQL failed a claim


class Worker:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tasks: set[asyncio.Task[None]] = set()
        self._backlog_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; then waits for the jobs in flight."""
        poll = self.ctx.settings.poll_interval
        while not stop.is_set():
            claimed = await self._claim()
            await self._refresh_backlog()
            if claimed < 0:
                await _wait(stop, STORE_BACKOFF)
            elif claimed == 0 or len(self.tasks) >= self.ctx.settings.concurrency:
                await self._wait_for_room(stop, poll)
        await self.drain()

    async def drain(self) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks))

    async def _claim(self) -> int:
        """How many jobs were claimed; -1 when PostgreSQL failed."""
        room = self.ctx.settings.concurrency - len(self.tasks)
        if room <= 0:
            return 0
        try:
            pushes = await self.ctx.queue.claim_push(room)
            for job in pushes:
                self._start(push_jobs.handle(self.ctx, job), f"push job {job.id}")
            room -= len(pushes)
            groups = await self.ctx.queue.claim_email(room) if room > 0 else []
        except STORE_ERRORS as exc:
            metrics.BACKEND_ERRORS.labels(backend="postgres").inc()
            logger.warning("claiming jobs failed (%r); retrying in %.0f s", exc, STORE_BACKOFF)
            return -1
        for group in groups:
            self._start(email_jobs.handle(self.ctx, group), f"email jobs {[j.id for j in group]}")
        return len(pushes) + len(groups)

    def _start(self, work: Awaitable[None], what: str) -> None:
        task = asyncio.ensure_future(_guarded(work, what))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _wait_for_room(self, stop: asyncio.Event, seconds: float) -> None:
        waiter = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                {waiter, *self.tasks}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter

    async def _refresh_backlog(self) -> None:
        now = time.monotonic()
        if now - self._backlog_at < BACKLOG_INTERVAL:
            return
        self._backlog_at = now
        try:
            backlog = await self.ctx.queue.backlog()
        except STORE_ERRORS:
            return  # the claim reports PostgreSQL trouble
        for channel, (pending, due) in backlog.items():
            metrics.JOBS_QUEUED.labels(channel=channel).set(pending)
            metrics.JOBS_DUE.labels(channel=channel).set(due)


async def _guarded(work: Awaitable[None], what: str) -> None:
    """A failing job is logged; its lease runs out and another attempt follows."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except STORE_ERRORS as exc:
        metrics.BACKEND_ERRORS.labels(backend="postgres").inc()
        logger.warning("%s: PostgreSQL failed (%r); retried when the lease runs out", what, exc)
    except Exception:
        logger.exception("%s failed; retried when the lease runs out", what)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
