"""What every job handler shares: the queue, the senders, and the endings common to both
channels (already sent, retry or give up, skip)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dispatcher.fallback import metrics
from dispatcher.fallback.email import Composer
from dispatcher.fallback.jobs import Job, Queue
from dispatcher.fallback.push import Pusher
from shared.config import WorkerSettings
from shared.models import Notification

logger = logging.getLogger("tocsin.worker")


@dataclass
class Context:
    settings: WorkerSettings
    pool: asyncpg.Pool
    queue: Queue
    composer: Composer | None
    pusher: Pusher | None

    async def skip(self, jobs: Sequence[Job], channel: str, why: str) -> None:
        """Cancel: nothing to send (read, acked, preferences, no address...)."""
        done = await self.queue.finish(jobs, "cancelled", why)
        metrics.JOBS.labels(channel=channel, outcome="skipped").inc(done)

    async def settle_existing(
        self, jobs: Sequence[Job], channel: str, existing: dict[str, str]
    ) -> list[Job]:
        """End the jobs whose send record was already past 'preparing'; return the rest."""
        rest = []
        for job in jobs:
            state = existing.get(job.notification_id)
            if state is None:
                rest.append(job)
            elif state in ("sending", "unknown"):
                # A worker died between handing the message over and recording it: it may
                # have gone out. At most once: record it as unknown, never send it again.
                await self.queue.mark([job.notification_id], channel, "unknown")
                logger.warning(
                    "%s job %d: a crash left its send unknown; not resent", channel, job.id
                )
                metrics.JOBS.labels(channel=channel, outcome="unknown").inc(
                    await self.queue.finish([job], "done", "unknown")
                )
            else:  # sent or failed before, under another job attempt
                outcome = "skipped" if state == "sent" else "failed"
                ended = await self.queue.finish(
                    [job], "done" if state == "sent" else "failed", state
                )
                metrics.JOBS.labels(channel=channel, outcome=outcome).inc(ended)
        return rest

    async def retry_or_give_up(self, jobs: Sequence[Job], channel: str, error: str) -> None:
        """A transient failure with nothing sent: due again after a backoff, or given up."""
        attempts = max(job.attempts for job in jobs)
        if attempts >= self.settings.max_attempts:
            await self.queue.mark([j.notification_id for j in jobs], channel, "failed", error)
            ended = await self.queue.finish(jobs, "failed", "gave_up", error)
            metrics.JOBS.labels(channel=channel, outcome="failed").inc(ended)
            logger.warning(
                "%s jobs %s: given up after %d attempts: %s",
                channel,
                [j.id for j in jobs],
                attempts,
                error,
            )
            return
        delay = self.backoff(attempts)
        await self.queue.retry(jobs, delay, error)
        metrics.JOBS.labels(channel=channel, outcome="retried").inc(len(jobs))
        logger.info("%s jobs %s: %s; retry in %.1f s", channel, [j.id for j in jobs], error, delay)

    def backoff(self, attempts: int) -> float:
        base = self.settings.retry_base * 2.0 ** max(attempts - 1, 0)
        return min(self.settings.retry_max, base) * random.uniform(0.8, 1.2)

    async def postpone(
        self, jobs: Sequence[Job], channel: str, until: datetime, now: datetime
    ) -> None:
        await self.queue.postpone(jobs, max((until - now).total_seconds(), 0.0))
        metrics.JOBS.labels(channel=channel, outcome="postponed").inc(len(jobs))


def skip_reason(notification: Notification | None, now: datetime) -> str | None:
    """Why a notification no longer needs a fallback, or None."""
    if notification is None:
        return "missing"
    if notification.read_at is not None:
        return "read"
    if notification.archived_at is not None:
        return "archived"
    if notification.expires_at is not None and notification.expires_at <= now:
        return "expired"
    return None
