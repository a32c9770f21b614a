"""The node's one Redis pub/sub connection (at-most-once, like all pub/sub).

Subscribes are confirmed before they return (so "subscribe, then read the backlog" holds).
A lost or silent link is detected (a probe published to the node's own channel must come
back), replaced, every held channel resubscribed, and `on_recovered` called so every socket
re-syncs from the store: what pub/sub dropped meanwhile is never lost. Until then `healthy`
is False (from two probe intervals without an echo), and the node reads the store instead."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.metrics import BACKEND_ERRORS, PUBSUB_CHANNELS, REDIS_RECONNECTS
from shared import keys

logger = logging.getLogger("tocsin.gateway.broker")

_CHUNK = 500
PUBSUB_PROTOCOL = 2  # RESP2 reads pub/sub faster than RESP3 (tests/perf/pubsub_read.py)


class BrokerUnavailable(Exception):
    """The pub/sub link is down; the broker resubscribes everything when it returns."""


class Broker:
    def __init__(
        self,
        redis_url: str,
        node_id: str,
        on_message: Callable[[str, bytes], None],
        channels: Callable[[], list[str]],
        on_recovered: Callable[[], None],
        *,
        probe_interval: float = 1.0,
        confirm_timeout: float = 5.0,
    ) -> None:
        # No hidden retries: a dropped link must surface here so we can resync.
        self._redis = aioredis.Redis.from_url(
            redis_url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=confirm_timeout,
            socket_timeout=confirm_timeout,  # a reconnect must not hang on a frozen server
            socket_keepalive=True,
            protocol=PUBSUB_PROTOCOL,
        )
        self._control = keys.node_channel(node_id)
        self._on_message = on_message
        self._channels = channels
        self._on_recovered = on_recovered
        self._probe_interval = probe_interval
        self._confirm_timeout = confirm_timeout
        self._pubsub: PubSub | None = None
        self._confirm: dict[str, asyncio.Future[None]] = {}
        self._heard = time.monotonic()
        self._broken = False
        self.connected = asyncio.Event()
        PUBSUB_CHANNELS.set_function(self._subscribed_count)

    @property
    def healthy(self) -> bool:
        """Connected with every subscribe confirmed, and the last probe came back."""
        return self.status() == "ok"

    def status(self) -> str:
        """'ok', or why the link cannot be trusted to deliver (readiness reports it)."""
        if self._pubsub is None or not self.connected.is_set():
            return "down: not connected"
        if self._broken:
            return "down: a subscribe was not confirmed"
        silent = time.monotonic() - self._heard
        if silent > 2 * self._probe_interval:
            return f"down: silent for {silent:.0f}s"
        return "ok"

    async def subscribe(self, channel: str) -> None:
        """Returns once Redis confirmed it. Raises BrokerUnavailable when the link is down or
        silent, or the subscribe fails: the link is then replaced, and the reconnect
        subscribes every held channel and resyncs every socket."""
        pubsub = self._pubsub
        if pubsub is None or not self.healthy:
            if pubsub is not None:
                self._broken = True  # a silent link would never confirm: replace it now
            raise BrokerUnavailable(channel)
        future = self._confirm.get(channel)
        if future is None or future.done():
            future = self._confirm[channel] = asyncio.get_running_loop().create_future()
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(future), self._confirm_timeout)
        except Exception:
            if self._pubsub is pubsub:
                self._broken = True  # unconfirmed: replace the link
            raise BrokerUnavailable(channel) from None

    async def unsubscribe(self, channel: str) -> None:
        if self._pubsub is not None and self.connected.is_set():
            await self._pubsub.unsubscribe(channel)

    async def run(self) -> None:
        """Listen forever; reconnect with capped backoff, reset after a good connection."""
        delay = 0.1
        links = 0
        while True:
            try:
                await self._connect()
                delay = 0.1
                links += 1
                if links > 1:
                    REDIS_RECONNECTS.inc()
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                BACKEND_ERRORS.labels("redis").inc()
                logger.warning("pub/sub link lost (%s); reconnecting in %.1fs", exc, delay)
            await self._disconnect()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        await self._disconnect()
        await self._redis.aclose()

    def _subscribed_count(self) -> int:
        """Channels on the live link (read at scrape time, possibly from another thread)."""
        pubsub = self._pubsub
        return len(pubsub.channels) if pubsub is not None and self.connected.is_set() else 0

    async def _connect(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await self._subscribe_all(pubsub)
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        # No await since the last check in _subscribe_all: nothing can slip in between.
        self._pubsub = pubsub
        self._broken = False
        self._heard = time.monotonic()
        self.connected.set()
        # Only now, with every subscription confirmed, may sockets re-read the store.
        self._on_recovered()

    async def _subscribe_all(self, pubsub: PubSub) -> None:
        """Subscribe every held channel; repeat for users who arrived meanwhile."""
        subscribed: set[str] = set()
        while True:
            wanted = {self._control, *self._channels()}
            missing, stale = sorted(wanted - subscribed), sorted(subscribed - wanted)
            if not missing and not stale:
                break
            for start in range(0, len(missing), _CHUNK):
                await pubsub.subscribe(*missing[start : start + _CHUNK])
            await self._confirmed(pubsub, set(missing))
            if stale:
                await pubsub.unsubscribe(*stale)
            subscribed = (subscribed | set(missing)) - set(stale)
        if len(subscribed) > 1:
            logger.info("pub/sub connected; subscribed %d users", len(subscribed) - 1)

    async def _confirmed(self, pubsub: PubSub, waiting: set[str]) -> None:
        async with asyncio.timeout(self._confirm_timeout + len(waiting) / 1000):
            while waiting:
                message = await pubsub.get_message(timeout=self._confirm_timeout)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    channel = message["channel"]
                    waiting.discard(channel.decode() if isinstance(channel, bytes) else channel)
                else:
                    self._handle(message)

    async def _disconnect(self) -> None:
        self.connected.clear()
        pubsub, self._pubsub = self._pubsub, None
        for future in self._confirm.values():
            if not future.done():
                future.set_exception(BrokerUnavailable("pub/sub link lost"))
        self._confirm.clear()
        if pubsub is not None:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception:
                logger.debug("closing a dead pub/sub link failed", exc_info=True)

    async def _listen(self) -> None:
        assert self._pubsub is not None
        pubsub = self._pubsub
        next_probe = time.monotonic()
        while True:
            if self._broken:
                raise ConnectionError("a subscribe was not confirmed")
            now = time.monotonic()
            if now >= next_probe:
                if now - self._heard > 3 * self._probe_interval:
                    raise ConnectionError("pub/sub link silent")
                await self._probe()
                next_probe = now + self._probe_interval
            message = await pubsub.get_message(timeout=self._probe_interval / 2)
            if message is not None:
                self._heard_again()
                self._handle(message)

    def _heard_again(self) -> None:
        """The link delivers. After a silence it may have dropped frames without breaking
        (a blackholing network that heals): every socket re-reads the store, as on recovery."""
        now = time.monotonic()
        silent, self._heard = now - self._heard > 2 * self._probe_interval, now
        if silent:
            logger.warning("pub/sub link delivers again after a silence; resyncing")
            self._on_recovered()

    async def _probe(self) -> None:
        """Publish to our own channel; bounded, so a frozen link cannot hold up the check."""
        limit = 2 * self._probe_interval
        try:
            async with asyncio.timeout(limit):
                await self._redis.publish(self._control, b"probe")
        except TimeoutError:
            raise ConnectionError(f"probe publish not answered within {limit:.1f}s") from None

    def _handle(self, message: dict[str, object]) -> None:
        kind = message["type"]
        channel = message["channel"]
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "message" and name != self._control:
            data = message["data"]
            assert isinstance(data, bytes)
            try:
                self._on_message(name, data)
            except Exception:
                logger.exception("delivering a frame on %s failed", name)
        elif kind == "subscribe":
            future = self._confirm.pop(name, None)
            if future is not None and not future.done():
                future.set_result(None)
