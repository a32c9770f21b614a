"""While the node's pub/sub link is down or silent, its tabs are fed from PostgreSQL.

Every `TOCSIN_STORE_POLL_INTERVAL` seconds one query reads, for every user the node holds,
the notifications after the newest seq its sockets have, and offers each to the sockets as
if it came from the user's channel: a socket sends the next seq, drops what it already has
and reads any gap from the store itself. A socket behind that newest seq (another one read
the store when it connected) reads its gap the same way. Polling stops once the link is
back with every subscribe confirmed; the broker's recovery resync covers the switch back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.hub import Hub
from gateway.metrics import BACKEND_ERRORS, STORE_POLLING
from shared.repository import STORE_ERRORS, Repository

logger = logging.getLogger("tocsin.gateway.store_poll")

PER_USER = 100  # rows per user per tick: a faster user catches up over the next ticks
PER_TICK = 2000  # rows per tick in all, every user's first rows before anyone's later ones
_LOOK = 0.25  # seconds between looks at the link while it is fine


class StorePoll:
    def __init__(
        self, repo: Repository, hub: Hub, link_status: Callable[[], str], interval: float
    ) -> None:
        self._repo = repo
        self._hub = hub
        self._link_status = link_status  # "ok", or why the pub/sub link cannot be trusted
        self._interval = interval
        self._since: float | None = None  # when polling started; None while not polling
        self._failing = False

    @property
    def polling(self) -> bool:
        return self._since is not None

    async def run(self) -> None:
        """Forever: check the link often (a cheap look); while it is not ok, poll every
        interval."""
        while True:
            await asyncio.sleep(self._interval if self.polling else min(self._interval, _LOOK))
            status = self._link_status()
            if status == "ok":
                self._stop()
                continue
            self._start(status)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("store poll failed")

    async def poll(self) -> int:
        """One query for every held user; returns how many notifications were offered."""
        cursors = self._hub.cursors()
        try:
            rows = await self._repo.newer_for_users(list(cursors.items()), PER_USER, PER_TICK)
        except STORE_ERRORS as exc:
            BACKEND_ERRORS.labels("postgres").inc()
            if not self._failing:
                logger.warning("store poll: PostgreSQL unreachable (%r); retrying", exc)
            self._failing = True
            return 0
        self._failing = False
        now = datetime.now(UTC)
        offered = 0
        for notification in rows:
            # An archived or expired row is skipped: the socket's gap fill steps over it.
            if not notification.deliverable(now):
                continue
            try:
                self._hub.deliver_stored(notification)
            except Exception:  # one row that cannot be encoded must not stall every user
                logger.exception("store poll: notification %s skipped", notification.id)
                continue
            offered += 1
        self._hub.sync_behind(cursors)
        return offered

    def _start(self, status: str) -> None:
        if self._since is not None:
            return
        self._since = time.monotonic()
        STORE_POLLING.set(1)
        logger.warning(
            "pub/sub link %s; reading %d users' notifications from the store every %.1fs",
            status,
            len(self._hub.users()),
            self._interval,
        )

    def _stop(self) -> None:
        if self._since is None:
            return
        polled_for = time.monotonic() - self._since
        self._since = None
        self._failing = False
        STORE_POLLING.set(0)
        logger.info("pub/sub link back; store poll stopped after %.1fs", polled_for)
