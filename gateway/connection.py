"""One authenticated socket: frames written straight to its transport (no writer task or
queue per socket), and the resume cursor that keeps what it receives gap-free, ordered and
without duplicates."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import NamedTuple

from gateway.metrics import CLOSES, DELIVERY_LATENCY, FRAMES_SENT, RESUME_BACKLOG
from gateway.wire import DirectSocket, text_frame
from shared import frames
from shared.models import Notification
from shared.repository import STORE_ERRORS

logger = logging.getLogger("tocsin.gateway.connection")

Fetch = Callable[[int, int], Awaitable[list[Notification]]]

SLOW_CONSUMER = 4009
# The largest backlog batch frame (docs/protocol.md "Limits"): a batch stops growing before
# it passes this, so a client with a modest frame limit still catches up. One notification
# within the producer limits encodes to well under it, so every batch holds at least one.
MAX_BATCH_BYTES = 256 * 1024

_EARLY_LIMIT = 64


class Live(NamedTuple):
    """A live `notification:new` frame (encoded for the wire) and its commit time (epoch
    seconds), held until the gap before it is filled."""

    frame: bytes
    created: float | None


class _Abandoned(Exception):
    """The socket is being closed; stop resuming it."""


class Connection:
    __slots__ = (
        "_buffer_bytes",
        "_early",
        "_fetch",
        "_held",
        "_held_bytes",
        "_held_limit",
        "_live",
        "_overflowed",
        "_page_size",
        "_stall_timeout",
        "_sync_again",
        "_sync_task",
        "closing",
        "id",
        "last_seq",
        "socket",
        "user_id",
    )  # fmt: skip

    def __init__(
        self,
        socket: DirectSocket,
        user_id: str,
        connection_id: str,
        fetch: Fetch,
        *,
        held_limit: int,
        buffer_bytes: int,
        page_size: int,
        stall_timeout: float = 2.0,
    ) -> None:
        self.socket = socket
        self.user_id = user_id
        self.id = connection_id
        self._fetch = fetch
        self._page_size = page_size
        self._buffer_bytes = buffer_bytes
        self._stall_timeout = stall_timeout
        # Backlog pages are written while the transport holds less than half the buffer.
        socket.set_high_water(buffer_bytes // 2)
        self._held: dict[int, Live] = {}  # live frames waiting for a sync or a gap to fill
        self._held_limit = held_limit
        self._held_bytes = 0
        self._early: list[bytes] = []  # state events that arrived before the welcome
        self._overflowed = False
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_again = False
        self._live = False  # until the initial sync starts (after welcome), frames are held
        self.last_seq = 0  # every seq <= this was sent to this socket (or is not deliverable)
        self.closing = False

    # -- sending -----------------------------------------------------------------------

    def send(self, frame: bytes) -> bool:
        """Write one encoded frame (gateway.wire.text_frame). A socket whose transport already
        holds a full buffer is a slow consumer and is closed; False when nothing was written."""
        if self.closing:
            return False
        buffered = self.socket.buffered()
        # One frame may exceed the buffer on its own (a large backlog page); two may not.
        if buffered and buffered + len(frame) > self._buffer_bytes:
            self.close(SLOW_CONSUMER, "slow consumer")
            return False
        return self.socket.write(frame)

    def send_json(self, payload: bytes) -> None:
        """A frame from its JSON bytes (welcome, pong, errors: not the per-message path)."""
        if self.send(text_frame(payload)):
            FRAMES_SENT.inc()

    def offer(self, seq: int, frame: bytes, created: float | None = None) -> bool:
        """A live `notification:new` frame; True when it was written to the socket now
        (the caller counts frames and the delivery latency once per message)."""
        if seq <= self.last_seq or self.closing:
            return False
        if self._live and self._sync_task is None and seq == self.last_seq + 1:
            self.last_seq = seq
            return self.send(frame)
        self._hold(seq, Live(frame, created))
        if self._live:
            self.request_sync()
        return False

    def send_event(self, frame: bytes) -> bool:
        """A read-state event; one that arrives before the welcome waits for it."""
        if self._live:
            return self.send(frame)
        if len(self._early) < _EARLY_LIMIT:
            self._early.append(frame)
        return False

    def _hold(self, seq: int, live: Live) -> None:
        fits = self._held_bytes + len(live.frame) <= self._buffer_bytes
        if seq not in self._held and len(self._held) < self._held_limit and fits:
            self._held[seq] = live
            self._held_bytes += len(live.frame)
        else:
            self._overflowed = True  # the store has it; the sync reads it again

    def _unhold(self, seq: int) -> Live | None:
        live = self._held.pop(seq, None)
        if live is not None:
            self._held_bytes -= len(live.frame)
        return live

    def close(self, code: int, reason: str) -> None:
        """Server-side close: the close frame follows what was already written, and the
        session's read loop ends (it receives the disconnect)."""
        if self.closing:
            return
        self.closing = True
        CLOSES.labels(str(code)).inc()
        self.socket.close_now(code, reason)

    # -- resume --------------------------------------------------------------------------

    @property
    def syncing(self) -> bool:
        """Reading the store (live frames are held meanwhile)."""
        return self._sync_task is not None

    def request_sync(self, *, initial: bool = False) -> None:
        """Read the store after last_seq and send what is missing (backlog or a gap).

        The initial call comes right after the welcome; a resync asked for before it
        (a broker recovery during the handshake) is covered by the initial one."""
        if initial:
            self._live = True
            for frame in self._early:
                self.send(frame)
            self._early.clear()
        elif not self._live:
            return
        if self._sync_task is not None:
            self._sync_again = True
            return
        self._sync_task = asyncio.create_task(self._sync(initial))

    async def _sync(self, initial: bool) -> None:
        try:
            while not self.closing:
                self._sync_again = self._overflowed = False
                await self._send_store_pages(initial)
                initial = False
                self._release_held()
                if self._sync_again or self._overflowed:
                    continue
                if not self._held:
                    break
                self._skip_to_held()
        except _Abandoned:
            pass
        except STORE_ERRORS as exc:
            logger.warning("resume for user %s: postgres unavailable: %r", self.user_id, exc)
            self.close(1013, "postgres unavailable; retry later")
        except Exception:
            logger.exception("resume failed for user %s", self.user_id)
            self.close(1011, "internal error")
        finally:
            self._sync_task = None

    async def _send_store_pages(self, initial: bool) -> None:
        announced = initial  # a reader told "more" is always told when it ends
        sent = 0
        while True:
            await self._wait_for_room()  # page as fast as it reads
            rows = await self._fetch(self.last_seq, self._page_size)
            more = len(rows) == self._page_size
            now = datetime.now(UTC)
            deliverable = [n for n in rows if n.deliverable(now)]
            if deliverable or (announced and not more):
                for frame in batch_frames(deliverable, more, MAX_BATCH_BYTES):
                    await self._wait_for_room()
                    self.send_json(frame)
                announced = announced or more
            sent += len(deliverable)
            if rows:
                self.last_seq = rows[-1].seq
            if not more:
                if initial:
                    RESUME_BACKLOG.observe(sent)
                return

    async def _wait_for_room(self) -> None:
        """Backpressure for the backlog: wait while the transport is paused (it holds more
        than half the buffer). A socket that does not drain below the low-water mark within
        the stall timeout is not reading: it is closed as a slow consumer, as a live one is
        when its buffer fills."""
        writable = self.socket.writable
        while not writable.is_set() or self.closing:
            if self.closing:
                raise _Abandoned
            try:
                await asyncio.wait_for(writable.wait(), self._stall_timeout)
            except TimeoutError:
                self.close(SLOW_CONSUMER, "slow consumer")
                raise _Abandoned from None

    def _release_held(self) -> None:
        for seq in [s for s in self._held if s <= self.last_seq]:
            self._unhold(seq)
        while (live := self._unhold(self.last_seq + 1)) is not None:
            self.last_seq += 1
            if self.send(live.frame):
                FRAMES_SENT.inc()
                if live.created is not None:
                    DELIVERY_LATENCY.observe(max(0.0, time.time() - live.created))

    def _skip_to_held(self) -> None:
        """The store has nothing between last_seq and the next held frame: never block on it."""
        logger.warning("seq gap for user %s after %s not in store", self.user_id, self.last_seq)
        self.last_seq = min(self._held) - 1
        self._release_held()

    async def stop(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task


def batch_frames(notifications: list[Notification], more: bool, limit: int) -> list[bytes]:
    """`notifications:batch` frames of at most `limit` bytes each (a single notification
    larger than that travels alone); every frame but the last says `more: true`."""
    encoded = frames.batch(notifications, more)
    if len(encoded) <= limit or len(notifications) <= 1:
        return [encoded]
    half = len(notifications) // 2
    return batch_frames(notifications[:half], True, limit) + batch_frames(
        notifications[half:], more, limit
    )
