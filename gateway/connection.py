"""One authenticated socket: a bounded send queue drained by its own writer task, and the
resume cursor that keeps what it receives gap-free, ordered and without duplicates."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import NamedTuple

from starlette.websockets import WebSocket

from gateway.metrics import CLOSES, DELIVERY_LATENCY, FRAMES_SENT, RESUME_BACKLOG
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
_CLOSE = object()  # queue sentinel: flush what is queued, then close


_EARLY_LIMIT = 64


class Live(NamedTuple):
    """A live `notification:new` frame and its commit time (epoch seconds), kept with it
    until it is written so the delivery latency ends when the socket has it."""

    text: str
    created: float | None


class _Abandoned(Exception):
    """The socket is being closed; stop resuming it."""


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        user_id: str,
        connection_id: str,
        fetch: Fetch,
        *,
        queue_size: int,
        buffer_bytes: int,
        page_size: int,
        stall_timeout: float = 2.0,
    ) -> None:
        self.websocket = websocket
        self.user_id = user_id
        self.id = connection_id
        self._fetch = fetch
        self._page_size = page_size
        self._queue: asyncio.Queue[object] = asyncio.Queue(queue_size)
        self._queued_bytes = 0
        self._buffer_bytes = buffer_bytes
        self._stall_timeout = stall_timeout
        self._progress = asyncio.Event()  # set each time the writer hands a frame over
        self._held: dict[int, Live] = {}  # live frames waiting for a sync or a gap to fill
        self._held_limit = queue_size
        self._held_chars = 0
        self._early: list[str] = []  # state events that arrived before the welcome
        self._overflowed = False
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_again = False
        self._live = False  # until the initial sync starts (after welcome), frames are held
        self.last_seq = 0  # every seq <= this was sent to this socket (or is not deliverable)
        self.closing = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.done = asyncio.Event()

    # -- sending -----------------------------------------------------------------------

    def send(self, frame: str | Live) -> None:
        """Queue one frame; a full queue means a slow consumer, which is disconnected."""
        if self.closing:
            return
        size = len(frame if isinstance(frame, str) else frame.text)
        # One frame may exceed the buffer on its own (a large backlog page); two may not.
        if self._queued_bytes and self._queued_bytes + size > self._buffer_bytes:
            self.close(SLOW_CONSUMER, "slow consumer", flush=False)
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close(SLOW_CONSUMER, "slow consumer", flush=False)
            return
        self._queued_bytes += size

    def offer(self, seq: int, text: str, created: float | None = None) -> None:
        """A live `notification:new` frame from the user's channel, committed at `created`."""
        if seq <= self.last_seq or self.closing:
            return
        if self._live and self._sync_task is None and seq == self.last_seq + 1:
            self.send(Live(text, created))
            self.last_seq = seq
            return
        self._hold(seq, Live(text, created))
        if self._live:
            self.request_sync()

    def send_event(self, text: str) -> None:
        """A read-state event; one that arrives before the welcome waits for it."""
        if self._live:
            self.send(text)
        elif len(self._early) < _EARLY_LIMIT:
            self._early.append(text)

    def _hold(self, seq: int, frame: Live) -> None:
        fits = self._held_chars + len(frame.text) <= self._buffer_bytes
        if seq not in self._held and len(self._held) < self._held_limit and fits:
            self._held[seq] = frame
            self._held_chars += len(frame.text)
        else:
            self._overflowed = True  # the store has it; the sync reads it again

    def _unhold(self, seq: int) -> Live | None:
        frame = self._held.pop(seq, None)
        if frame is not None:
            self._held_chars -= len(frame.text)
        return frame

    def close(self, code: int, reason: str, *, flush: bool) -> None:
        """Server-side close. flush=True sends what is queued first (e.g. a reconnect frame)."""
        if self.closing:
            return
        self.closing = True
        self.close_code, self.close_reason = code, reason
        CLOSES.labels(str(code)).inc()
        if flush:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_CLOSE)
                return
        self.done.set()

    async def write_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is _CLOSE:
                self.done.set()
                return
            assert isinstance(item, str | Live)
            text, created = (item, None) if isinstance(item, str) else item
            await self.websocket.send_text(text)
            FRAMES_SENT.inc()
            if created is not None:
                DELIVERY_LATENCY.observe(max(0.0, time.time() - created))
            self._queued_bytes -= len(text)
            self._progress.set()

    # -- resume --------------------------------------------------------------------------

    def request_sync(self, *, initial: bool = False) -> None:
        """Read the store after last_seq and send what is missing (backlog or a gap).

        The initial call comes right after the welcome; a resync asked for before it
        (a broker recovery during the handshake) is covered by the initial one."""
        if initial:
            self._live = True
            for text in self._early:
                self.send(text)
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
            self.close(1013, "postgres unavailable; retry later", flush=False)
        except Exception:
            logger.exception("resume failed for user %s", self.user_id)
            self.close(1011, "internal error", flush=False)
        finally:
            self._sync_task = None

    async def _send_store_pages(self, initial: bool) -> None:
        announced = initial  # a reader told "more" is always told when it ends
        sent = 0
        while True:
            await self._wait_for_room(self._buffer_bytes // 2)  # page as fast as it reads
            rows = await self._fetch(self.last_seq, self._page_size)
            more = len(rows) == self._page_size
            now = datetime.now(UTC)
            deliverable = [n for n in rows if n.deliverable(now)]
            if deliverable or (announced and not more):
                for frame in batch_frames(deliverable, more, MAX_BATCH_BYTES):
                    text = frame.decode()
                    await self._wait_for_room(len(text))
                    self.send(text)
                announced = announced or more
            sent += len(deliverable)
            if rows:
                self.last_seq = rows[-1].seq
            if not more:
                if initial:
                    RESUME_BACKLOG.observe(sent)
                return

    async def _wait_for_room(self, size: int) -> None:
        """Backpressure for the backlog: wait until `size` more characters fit the buffer.

        A socket whose writer hands nothing over for the stall timeout meanwhile is not
        reading: it is closed as a slow consumer, as a live one is when its buffer fills."""
        while self._queued_bytes and self._queued_bytes + size > self._buffer_bytes:
            if self.closing:
                raise _Abandoned
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), self._stall_timeout)
            except TimeoutError:
                self.close(SLOW_CONSUMER, "slow consumer", flush=False)
                raise _Abandoned from None

    def _release_held(self) -> None:
        for seq in [s for s in self._held if s <= self.last_seq]:
            self._unhold(seq)
        while (frame := self._unhold(self.last_seq + 1)) is not None:
            self.send(frame)
            self.last_seq += 1

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
