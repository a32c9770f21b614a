"""The outbox: every committed notification reaches its user's channel, even when its publish
was lost or its dispatcher died between the commit and the publish.

Rows are committed unpublished (`published_at IS NULL`). A request that publishes its rows
queues their ids here and the next scan marks them in one statement. Every dispatcher scans
for rows unpublished past `delay`, claims them with `FOR UPDATE SKIP LOCKED` (no two
dispatchers share a row), publishes them and marks them in the same transaction. Marking is
best effort: a row published but not marked is published again, which is harmless because
gateways drop seqs a socket already has and clients de-duplicate by id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from dispatcher import metrics
from dispatcher.publisher import Publisher, PublishFailed
from shared.models import Notification
from shared.repository import STORE_ERRORS, Repository

logger = logging.getLogger("tocsin.dispatcher.outbox")

BATCH = 500  # rows claimed per scan: bounds one transaction and one publish
MAX_BACKOFF = 5.0  # seconds between scans after unexpected errors
MAX_QUEUED_MARKS = 100_000  # ids awaiting their mark; beyond it the outbox re-publishes them


class Outbox:
    def __init__(
        self,
        repository: Repository,
        publisher: Publisher,
        *,
        delay: float,
        interval: float,
        batch: int = BATCH,
    ) -> None:
        self.repository = repository
        self.publisher = publisher
        self.delay = delay
        self.interval = interval
        self.batch = batch
        self._marks: list[str] = []
        self._outage: str | None = None  # the backend whose outage was logged

    def published(self, notifications: Sequence[Notification]) -> None:
        """A request published these: they are marked with the next scan."""
        if len(self._marks) + len(notifications) <= MAX_QUEUED_MARKS:
            self._marks.extend(n.id for n in notifications)

    async def run(self) -> None:
        """Scan every `interval` until cancelled; unexpected errors back off up to a cap."""
        pause = self.interval
        while True:
            await asyncio.sleep(pause)
            try:
                await self.scan()
            except Exception:
                pause = min(pause * 2, MAX_BACKOFF)
                logger.exception("outbox scan failed; next in %.2f s", pause)
            else:
                pause = self.interval

    async def scan(self) -> int:
        """One pass: mark what requests published, then re-publish what is overdue. Returns
        how many were re-published. An outage of Redis or PostgreSQL is logged once."""
        try:
            await self.flush_marks()
            if self._outage == "redis" and not await self.publisher.reachable():
                return 0
            count = await self._republish(None)
        except PublishFailed as exc:
            self._down("redis", exc.cause)
            return 0
        except STORE_ERRORS as exc:
            metrics.BACKEND_ERRORS.labels(backend="postgres").inc()
            self._down("postgres", exc)
            return 0
        self._up()
        return count

    async def flush_marks(self) -> None:
        """Mark queued ids published in one statement; on failure they are re-published."""
        ids, self._marks = self._marks, []
        await self.repository.mark_published(ids)

    async def publish_replays(self, notifications: Sequence[Notification]) -> None:
        """Idempotent replays: publish now those still unpublished past the delay (their
        first publish was lost). Never raises for a backend: the scan retries."""
        if not notifications:
            return
        try:
            await self._republish([n.id for n in notifications])
        except PublishFailed as exc:
            logger.warning("replayed notifications not published, left to the outbox: %s", exc)
        except STORE_ERRORS as exc:
            metrics.BACKEND_ERRORS.labels(backend="postgres").inc()
            logger.warning("replayed notifications not checked, left to the outbox: %r", exc)

    async def _republish(self, ids: Sequence[str] | None) -> int:
        limit = self.batch if ids is None else len(ids)
        async with self.repository.claim_unpublished(self.delay, limit, ids) as claimed:
            if ids is None:
                metrics.OUTBOX_PENDING.set(len(claimed))
            # Oldest first was for fairness; each user's frames go out in seq order.
            await self.publisher.publish_all(sorted(claimed, key=lambda n: (n.user_id, n.seq)))
        metrics.OUTBOX_REPUBLISHED.inc(len(claimed))
        return len(claimed)

    def _down(self, backend: str, cause: BaseException) -> None:
        if self._outage != backend:
            logger.warning(
                "outbox paused: %s unavailable (%r); retrying every %.2f s",
                backend,
                cause,
                self.interval,
            )
        self._outage = backend

    def _up(self) -> None:
        if self._outage is not None:
            logger.info("outbox resumed after the %s outage", self._outage)
        self._outage = None
