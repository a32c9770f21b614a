"""This node's sockets by user, and the fan-out of each user's messages to them.

A message arrives once per node; its routing line says the seq without decoding the JSON
(shared/envelope.py), the frame is encoded for the wire once, and the same bytes are written
to every socket of its user (no per-socket serialization, no queue, no task)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Protocol

from gateway.connection import Connection
from gateway.metrics import CONNECTIONS, DELIVERY_LATENCY, FRAMES_SENT, USERS
from gateway.wire import text_frame
from shared import envelope, frames
from shared.models import Notification

logger = logging.getLogger("tocsin.gateway.hub")


class Subscriber(Protocol):
    async def subscribe(self, user_id: str) -> None: ...
    async def unsubscribe(self, user_id: str) -> None: ...


class PresenceTracker(Protocol):
    async def joined(self, user_id: str) -> None: ...
    async def left(self, user_id: str) -> None: ...


class Hub:
    def __init__(self, subscriber: Subscriber, presence: PresenceTracker) -> None:
        self._subscriber = subscriber
        self._presence = presence
        self._users: dict[str, set[Connection]] = {}
        # Resolved once the node's subscription to the user's channel is confirmed.
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._count = 0  # sockets held: kept, not recounted per connect
        self.empty = asyncio.Event()
        self.empty.set()

    def users(self) -> list[str]:
        return list(self._users)

    def connections(self) -> Iterator[Connection]:
        for conns in list(self._users.values()):
            yield from list(conns)

    def count(self) -> int:
        return self._count

    async def add(self, conn: Connection) -> None:
        """Register a socket; returns once its user's channel is subscribed (guarantee 3)."""
        user = conn.user_id
        conns = self._users.get(user)
        if conns is None:
            conns = self._users[user] = set()
            ready = self._ready[user] = asyncio.get_running_loop().create_future()
            conns.add(conn)
            self._count += 1
            self._gauges()
            subscribed = False
            try:
                await self._subscriber.subscribe(user)
                subscribed = True
            except Exception:
                # Degraded: the store poll covers the user until the broker recovers, then
                # resubscribes every user and resyncs every socket.
                logger.warning("subscribe for user %s failed; waiting for broker", user)
            finally:
                ready.set_result(None)
            if subscribed:  # else Redis is unwell: the next presence heartbeat claims the user
                await self._presence.joined(user)
        else:
            if conn not in conns:
                conns.add(conn)
                self._count += 1
            self._gauges()
            await asyncio.shield(self._ready[user])

    async def remove(self, conn: Connection) -> None:
        user = conn.user_id
        conns = self._users.get(user)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        self._count -= 1
        if not conns:
            del self._users[user]
            del self._ready[user]
            with contextlib.suppress(Exception):
                await self._subscriber.unsubscribe(user)
            await self._presence.left(user)
        self._gauges()

    def deliver(self, user_id: str, data: bytes) -> None:
        """One message from the user's channel (an envelope), to every local socket of that
        user. Counted once per message: frames written, and the commit-to-written latency."""
        conns = self._users.get(user_id)
        if not conns:
            return
        try:
            seq, created, payload = envelope.parse(data)
        except envelope.EnvelopeError as exc:
            logger.error("dropping a malformed message for user %s: %s", user_id, exc)
            return
        frame = text_frame(payload)
        if seq:
            if self._offer(conns, seq, frame, created) and created is not None:
                DELIVERY_LATENCY.observe(max(0.0, time.time() - created))
            return
        written = sum(conn.send_event(frame) for conn in conns)
        if written:
            FRAMES_SENT.inc(written)

    def deliver_stored(self, notification: Notification) -> None:
        """A notification read from the store, offered as if it came from the user's channel
        (the store poll while pub/sub is down): sockets drop what they hold, fill gaps."""
        conns = self._users.get(notification.user_id)
        if conns:
            frame = text_frame(frames.new_notification(notification))
            created = notification.created_at.timestamp()
            self._offer(conns, notification.seq, frame, created)

    @staticmethod
    def _offer(conns: set[Connection], seq: int, frame: bytes, created: float | None) -> int:
        """A `notification:new` frame to each socket; how many wrote it now (counted)."""
        written = sum(conn.offer(seq, frame, created) for conn in conns)
        if written:
            FRAMES_SENT.inc(written)
        return written

    def cursors(self) -> dict[str, int]:
        """Per user, the newest seq any of its sockets has: what a poll reads after."""
        return {
            user: max(conn.last_seq for conn in conns)
            for user, conns in self._users.items()
            if conns
        }

    def sync_behind(self, cursors: dict[str, int]) -> None:
        """Sockets behind their user's newest seq re-read the store from their own cursor: one
        that synced from the store meanwhile got ahead of rows the others were never sent."""
        for user, newest in cursors.items():
            for conn in list(self._users.get(user, ())):
                if conn.last_seq < newest:
                    conn.request_sync()

    def resync_all(self) -> None:
        """After the pub/sub link was lost: every socket re-reads the store from its cursor."""
        for conn in self.connections():
            conn.request_sync()

    def _gauges(self) -> None:
        if self._users:
            self.empty.clear()
        else:
            self.empty.set()
        USERS.set(len(self._users))
        CONNECTIONS.set(self._count)

    def sockets_of(self, user_id: str) -> int:
        """How many sockets this node holds for the user (TOCSIN_WS_MAX_SOCKETS_PER_USER)."""
        return len(self._users.get(user_id, ()))
