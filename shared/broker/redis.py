"""Redis pub/sub behind the Broker interface: the only module that publishes or subscribes.

One channel per user (keys.user_channel). Batches of publishes go out on the broker's own
publishing connection (shared/broker/pipelined.py: RESP packed by hand, replies read by
hiredis), to where the redis-py client points; single publishes and probes go through that
client. Subscribing goes through the node's one link of its own (shared/broker/link.py),
which reads many messages per wake-up. Delivery is at most once, like all pub/sub:

- subscribe() returns once Redis confirmed it, so "subscribe, then read the backlog" holds;
  subscribes arriving in one loop tick go out as one SUBSCRIBE;
- a lost or silent link is detected (a probe published to the node's own channel must come
  back), replaced, every user resubscribed and confirmed, and only then on_recovered called
  so every socket re-syncs from the store: what pub/sub dropped meanwhile is never lost;
- until then `healthy` is False (from two probe intervals without hearing the link).

Redis Cluster with sharded pub/sub (SSUBSCRIBE / SPUBLISH) would be another class with this
interface: nothing outside shared/broker/ knows a channel name."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from shared import keys
from shared.broker.base import (
    BrokerMetrics,
    BrokerUnavailable,
    OnMessage,
    OnRecovered,
    Users,
    no_message,
    no_users,
    nothing,
)
from shared.broker.link import SUBSCRIBE, UNSUBSCRIBE, Endpoint, Link, command
from shared.broker.pipelined import Pipelined

logger = logging.getLogger("tocsin.broker")

CHUNK = 500  # channels per (re)SUBSCRIBE command, messages per publish write
MAX_BACKOFF = 5.0  # seconds between reconnect attempts at most
PUBLISH_CONNECTIONS = 32  # the broker's own client: publishes and probes share this many
_FAILURES = (RedisError, OSError)  # what a publish may raise; mapped to BrokerUnavailable


class _Confirmations:
    """Futures awaiting Redis's confirmation, per (kind, channel), in the order sent: Redis
    confirms every channel of every SUBSCRIBE / UNSUBSCRIBE, in order."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[bytes, bytes], deque[asyncio.Future[None]]] = {}

    def add(self, kind: bytes, channel: bytes) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((kind, channel), deque()).append(future)
        return future

    def resolve(self, kind: bytes, channel: bytes) -> None:
        queue = self._waiting.get((kind, channel))
        if not queue:
            return
        future = queue.popleft()
        if not queue:
            del self._waiting[kind, channel]
        if not future.done():
            future.set_result(None)

    def fail(self, reason: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for queue in waiting.values():
            for future in queue:
                if not future.done():
                    future.set_exception(BrokerUnavailable(reason))


class RedisBroker:
    def __init__(
        self,
        url: str | None,
        *,
        node_id: str | None = None,
        client: aioredis.Redis | None = None,
        on_message: OnMessage = no_message,
        users: Users = no_users,
        on_recovered: OnRecovered = nothing,
        metrics: BrokerMetrics | None = None,
        probe_interval: float = 1.0,
        confirm_timeout: float = 5.0,
    ) -> None:
        """`client` publishes (the broker makes its own from `url` when None, and closes only
        its own); the subscriber link is the broker's own connection to `url` (None: the
        broker only publishes, see publishing())."""
        node_id = node_id or f"anonymous-{uuid.uuid4().hex[:8]}"
        if client is None:
            if url is None:
                raise ValueError("a RedisBroker needs a URL or a client")
            client = _publishing_client(url, confirm_timeout)
            self._own_client = True
        else:
            self._own_client = False
        self._client = client
        self._endpoint = Endpoint.from_url(url) if url is not None else None
        self._publishing = Pipelined(Endpoint.from_pool(client.connection_pool), confirm_timeout)
        # How CLIENT LIST names the link (no spaces or control characters allowed there).
        self.client_name = "tocsin-pubsub:" + "".join(
            c if "!" <= c <= "~" else "_" for c in node_id
        )
        self._control = keys.node_channel(node_id)
        self._control_bytes = self._control.encode()
        self._on_message = on_message
        self._users = users
        self._on_recovered = on_recovered
        self._metrics = metrics or BrokerMetrics()
        self._probe_interval = probe_interval
        self._confirm_timeout = confirm_timeout
        self._link: Link | None = None
        self._broken: str | None = None  # why the live link must be replaced
        self._wake = asyncio.Event()
        self._heard = time.monotonic()
        self._confirmations = _Confirmations()
        self._pending: dict[bytes, asyncio.Future[None]] = {}  # subscribes a caller may share
        self._outgoing: list[tuple[bytes, bytes]] = []  # (kind, channel) sent at the tick's end
        self._flush_due = False
        self._subscribed: set[bytes] = set()  # confirmed on the live link
        self.subscribe_commands = 0  # SUBSCRIBE commands sent, for tests and curiosity
        self.connected = asyncio.Event()
        if self._metrics.channels is not None:
            self._metrics.channels.set_function(self._channel_count)

    @classmethod
    def publishing(cls, client: aioredis.Redis) -> RedisBroker:
        """A broker that only publishes, through `client`: it never runs a subscriber link."""
        return cls(None, client=client)

    # --- state ---------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """Connected with every subscribe confirmed, and the link was heard lately."""
        return self.status() == "ok"

    def status(self) -> str:
        """'ok', or why the link cannot be trusted to deliver (readiness reports it)."""
        if self._link is None or not self.connected.is_set():
            return "down: not connected"
        if self._broken is not None:
            return f"down: {self._broken}"
        silent = time.monotonic() - self._heard
        if silent > 2 * self._probe_interval:
            return f"down: silent for {silent:.0f}s"
        return "ok"

    def _channel_count(self) -> int:
        """Channels on the live link (read at scrape time, possibly from another thread)."""
        return len(self._subscribed) if self.connected.is_set() else 0

    # --- publishing ----------------------------------------------------------------------

    async def publish(self, user_id: str, message: bytes) -> None:
        try:
            await self._client.publish(keys.user_channel(user_id), message)
        except _FAILURES as exc:
            raise BrokerUnavailable(f"publish failed: {exc!r}") from exc

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """In order, one write per CHUNK messages, pipelined on the publishing connection."""
        await self._publishing.publish_many(messages, CHUNK)

    # --- subscribing ---------------------------------------------------------------------

    async def subscribe(self, user_id: str) -> None:
        """Returns once Redis confirmed it. Raises BrokerUnavailable when the link is down or
        silent, or the subscribe is not confirmed in time: the link is then replaced, and the
        reconnect subscribes every user and calls on_recovered."""
        link = self._link
        status = self.status()
        if link is None or status != "ok":
            if self.connected.is_set():
                self._break("a subscribe found the link silent")  # it would never confirm
            raise BrokerUnavailable(f"pub/sub {status}")
        channel = keys.user_channel(user_id).encode()
        future = self._pending.get(channel)
        if future is None or future.done():
            future = self._pending[channel] = self._confirmations.add(SUBSCRIBE, channel)
            self._queue(SUBSCRIBE, channel)
        try:
            async with asyncio.timeout(self._confirm_timeout):
                await asyncio.shield(future)
        except Exception:
            if self._link is link:
                self._break("a subscribe was not confirmed")
            raise BrokerUnavailable(f"subscribe for {user_id!r} not confirmed") from None

    async def unsubscribe(self, user_id: str) -> None:
        channel = keys.user_channel(user_id).encode()
        self._pending.pop(channel, None)  # a later subscribe must go out again
        if self._link is None or not self.connected.is_set():
            return  # the reconnect subscribes only the users the node still holds
        future = self._confirmations.add(UNSUBSCRIBE, channel)
        self._queue(UNSUBSCRIBE, channel)
        with contextlib.suppress(Exception):  # a link that does not answer is replaced anyway
            async with asyncio.timeout(self._confirm_timeout):
                await asyncio.shield(future)

    def _queue(self, kind: bytes, channel: bytes) -> None:
        """Everything asked in this loop tick goes out together, in order, at its end."""
        self._outgoing.append((kind, channel))
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        outgoing, self._outgoing = self._outgoing, []
        link = self._link
        if link is None:
            return  # the link was lost: its confirmations already failed
        for kind, run in itertools.groupby(outgoing, key=lambda op: op[0]):
            self._send(link, kind, [channel for _, channel in run])

    def _send(self, link: Link, kind: bytes, channels: Sequence[bytes]) -> None:
        verb = b"SUBSCRIBE" if kind == SUBSCRIBE else b"UNSUBSCRIBE"
        for start in range(0, len(channels), CHUNK):
            link.send(command(verb, *channels[start : start + CHUNK]))
            if kind == SUBSCRIBE:
                self.subscribe_commands += 1

    # --- what the link reports -----------------------------------------------------------

    def heard(self) -> None:
        """The link delivers. After a silence it may have dropped messages without breaking
        (a blackholing network that heals): every socket re-reads the store, as on recovery."""
        now = time.monotonic()
        silent, self._heard = now - self._heard > 2 * self._probe_interval, now
        if silent and self.connected.is_set():
            logger.warning("pub/sub link delivers again after a silence; resyncing")
            self._on_recovered()

    def confirmed(self, kind: bytes, channel: bytes) -> None:
        if kind == SUBSCRIBE:
            self._subscribed.add(channel)
        else:
            self._subscribed.discard(channel)
        self._confirmations.resolve(kind, channel)

    def lost(self, link: Link, reason: str) -> None:
        if link is self._link:
            self._confirmations.fail(reason)  # nobody waits out a timeout for a dead link
            self._break(reason)

    def _break(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
        self._wake.set()

    # --- the link's life -----------------------------------------------------------------

    async def run(self) -> None:
        """Keep the link up forever; reconnect with capped backoff, reset after a good link."""
        endpoint = self._endpoint
        if endpoint is None:
            raise RuntimeError("this broker only publishes (RedisBroker.publishing)")
        delay = 0.1
        links = 0
        try:
            while True:
                try:
                    await self._connect(endpoint)
                    delay = 0.1
                    links += 1
                    if links > 1 and self._metrics.reconnects is not None:
                        self._metrics.reconnects.inc()
                    await self._watch()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self._metrics.errors is not None:
                        self._metrics.errors.inc()
                    logger.warning("pub/sub link lost (%r); reconnecting in %.1fs", exc, delay)
                self._disconnect()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
        finally:
            self._disconnect()

    async def close(self) -> None:
        self._disconnect()
        self._publishing.close()
        if self._own_client:
            await self._client.aclose()

    async def _connect(self, endpoint: Endpoint) -> None:
        link = self._link = Link(self, self._on_message, self._control_bytes)
        self._broken = None
        self._heard = time.monotonic()
        async with asyncio.timeout(self._confirm_timeout):
            await endpoint.open(link)
            name = command(b"CLIENT", b"SETNAME", self.client_name.encode())
            await link.login(endpoint.login(), [name])
        await self._subscribe_all(link)
        if self._broken is not None:
            raise ConnectionError(self._broken)
        # No await since the last look at the hub's users: nobody can slip in between.
        self._heard = time.monotonic()
        self.connected.set()
        # Only now, with every subscription confirmed, may sockets re-read the store.
        self._on_recovered()

    async def _subscribe_all(self, link: Link) -> None:
        """Subscribe the node's channel and every user's; repeat for users who came or went
        meanwhile (their own subscribe was refused while the link was not connected)."""
        done: set[bytes] = set()
        while True:
            wanted = {self._control_bytes}
            wanted.update(keys.user_channel(user).encode() for user in self._users())
            missing, stale = sorted(wanted - done), sorted(done - wanted)
            if not missing and not stale:
                break
            confirmed = [self._confirmations.add(SUBSCRIBE, channel) for channel in missing]
            self._send(link, SUBSCRIBE, missing)
            async with asyncio.timeout(self._confirm_timeout + len(missing) / 1000):
                await asyncio.gather(*confirmed)
            if stale:
                self._send(link, UNSUBSCRIBE, stale)
            done = (done | set(missing)) - set(stale)
        if len(done) > 1:
            logger.info("pub/sub connected; subscribed %d users", len(done) - 1)

    async def _watch(self) -> None:
        """Until the link breaks: probe it every interval, fail it when it stays silent."""
        next_probe = time.monotonic()
        while True:
            self._wake.clear()
            if self._broken is not None:
                raise ConnectionError(self._broken)
            now = time.monotonic()
            if now >= next_probe:
                if now - self._heard > 3 * self._probe_interval:
                    raise ConnectionError("pub/sub link silent")
                await self._probe()
                next_probe = now + self._probe_interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next_probe - time.monotonic()):
                    await self._wake.wait()

    async def _probe(self) -> None:
        """Publish to our own channel; bounded, so a frozen server cannot hold up the check."""
        limit = 2 * self._probe_interval
        try:
            async with asyncio.timeout(limit):
                await self._client.publish(self._control, b"probe")
        except TimeoutError:
            raise ConnectionError(f"probe publish not answered within {limit:.1f}s") from None
        # redis-py 8.1 can return normally from a publish whose task was cancelled meanwhile
        # (a loop of publishes cancelled at random instants shows it): keep the cancellation.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    def _disconnect(self) -> None:
        self.connected.clear()
        link, self._link = self._link, None
        self._outgoing.clear()
        self._pending.clear()
        self._subscribed.clear()
        self._confirmations.fail("pub/sub link lost")
        if link is not None:
            link.close()


def _publishing_client(url: str, timeout: float) -> aioredis.Redis:
    """Publishes and probes. No hidden retries: a failure surfaces to the caller at once. A
    burst waits for a free connection instead of failing with MaxConnectionsError."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=PUBLISH_CONNECTIONS,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,  # a probe must not hang on a frozen server
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis.from_pool(pool)
