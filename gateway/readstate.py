"""Read state changes (guarantee 6): stored in PostgreSQL, then pushed with the user's fresh
counts to every socket of that user on every node, whether made over REST or a socket."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from gateway.metrics import BACKEND_ERRORS
from shared import envelope, frames
from shared.broker import Broker, BrokerUnavailable
from shared.models import Counts, Notification
from shared.repository import Repository

logger = logging.getLogger("tocsin.gateway.readstate")

_ONE = {
    "read": (Repository.mark_read, frames.READ),
    "unread": (Repository.mark_unread, frames.UNREAD),
    "archive": (Repository.archive, frames.ARCHIVED),
}


class ReadState:
    def __init__(self, repo: Repository, broker: Broker) -> None:
        self._repo = repo
        self._broker = broker

    async def change_one(
        self, action: str, user_id: str, notification_id: str
    ) -> tuple[Notification, Counts] | None:
        """Apply read / unread / archive; None when the user has no such notification."""
        method, event = _ONE[action]
        notification = await method(self._repo, user_id, notification_id)
        if notification is None:
            return None
        counts = await self._repo.counts(user_id)
        at = notification.read_at if action == "read" else None
        await self._publish(
            user_id, frames.state_change(event, counts, ids=[notification.id], at=at)
        )
        return notification, counts

    async def read_all(self, user_id: str, up_to_seq: int | None) -> tuple[int, Counts]:
        updated = await self._repo.mark_all_read(user_id, up_to_seq)
        return updated, await self._announce(frames.READ_ALL, user_id, up_to_seq)

    async def seen_all(self, user_id: str, up_to_seq: int | None) -> tuple[int, Counts]:
        updated = await self._repo.mark_all_seen(user_id, up_to_seq)
        return updated, await self._announce(frames.SEEN_ALL, user_id, up_to_seq)

    async def _announce(self, event: str, user_id: str, up_to_seq: int | None) -> Counts:
        counts = await self._repo.counts(user_id)
        frame = frames.state_change(event, counts, up_to_seq=up_to_seq, at=datetime.now(UTC))
        await self._publish(user_id, frame)
        return counts

    async def _publish(self, user_id: str, frame: bytes) -> None:
        """Best effort: the change is already stored; tabs reconcile counts on reconnect."""
        try:
            await self._broker.publish(user_id, envelope.event(frame))
        except BrokerUnavailable:
            BACKEND_ERRORS.labels("redis").inc()
            logger.warning("read-state event for %s not published (Redis down)", user_id)
