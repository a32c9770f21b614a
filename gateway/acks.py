"""Delivered means acknowledged (guarantee 4): acks are cumulative per user and written in
one batched UPDATE per flush interval, never one query per ack."""

from __future__ import annotations

import asyncio
import logging

from gateway.metrics import BACKEND_ERRORS
from shared.repository import Repository

logger = logging.getLogger("tocsin.gateway.acks")


class AckBatcher:
    def __init__(self, repo: Repository, interval: float) -> None:
        self._repo = repo
        self._interval = interval
        self._pending: dict[str, int] = {}  # user -> highest acked seq; bounded by users held

    def ack(self, user_id: str, seq: int) -> None:
        if seq > self._pending.get(user_id, 0):
            self._pending[user_id] = seq

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            # Sorted: nodes flushing overlapping users lock rows in the same order.
            await self._repo.mark_delivered(sorted(batch.items()))
        except Exception:
            BACKEND_ERRORS.labels("postgres").inc()
            logger.warning("could not record %d acks; retrying next flush", len(batch))
            for user, seq in batch.items():
                self.ack(user, seq)
