"""The in-process twin of RedisBroker, for fast tests of what sits on a broker (Hub, Session,
ReadState): the same semantics without a server.

- subscribe() is confirmed at the end of the loop tick, all subscribes of one tick together
  (one "command", counted in subscribe_commands);
- messages are delivered later in the loop (never inside publish), in publish order per user;
- at most once: drop_link() (or MemoryBus.set_up(False)) loses what was in flight, the broker
  reconnects, resubscribes users() and calls on_recovered, as the Redis one does.

Several brokers on one MemoryBus are several nodes on one Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from shared.broker.base import (
    BrokerUnavailable,
    OnMessage,
    OnRecovered,
    Users,
    no_message,
    no_users,
    nothing,
)

logger = logging.getLogger("tocsin.broker")


class MemoryBus:
    """What Redis is to RedisBrokers: it carries every publish to every subscribed broker."""

    def __init__(self) -> None:
        self._brokers: list[MemoryBroker] = []
        self._up = asyncio.Event()
        self._up.set()

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def set_up(self, up: bool) -> None:
        """Down: publishes fail, every broker's link is lost and waits for the bus to return."""
        if up:
            self._up.set()
            return
        self._up.clear()
        for broker in list(self._brokers):
            broker.drop_link()

    async def wait_up(self) -> None:
        await self._up.wait()

    def attach(self, broker: MemoryBroker) -> None:
        self._brokers.append(broker)

    def detach(self, broker: MemoryBroker) -> None:
        if broker in self._brokers:
            self._brokers.remove(broker)

    def publish(self, user_id: str, message: bytes) -> int:
        """How many brokers (nodes) it was offered to, as Redis's PUBLISH answers."""
        if not self.up:
            raise BrokerUnavailable("publish failed: the memory bus is down")
        return sum(broker.offer(user_id, message) for broker in self._brokers)


class MemoryBroker:
    def __init__(
        self,
        bus: MemoryBus | None = None,
        *,
        on_message: OnMessage = no_message,
        users: Users = no_users,
        on_recovered: OnRecovered = nothing,
        reconnect_delay: float = 0.0,
    ) -> None:
        self.bus = bus if bus is not None else MemoryBus()
        self.bus.attach(self)
        self._on_message = on_message
        self._users = users
        self._on_recovered = on_recovered
        self._reconnect_delay = reconnect_delay
        self._subscribed: set[str] = set()
        self._outgoing: list[tuple[bool, str, asyncio.Future[None]]] = []  # (subscribe?, user)
        self._lost = asyncio.Event()
        self._link = 0  # which link a message was offered on: a lost link drops its messages
        self.subscribe_commands = 0
        self.links = 0  # links made so far (the first, then one per recovery)
        self.connected = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return self.status() == "ok"

    def status(self) -> str:
        return "ok" if self.connected.is_set() else "down: not connected"

    async def publish(self, user_id: str, message: bytes) -> None:
        self.bus.publish(user_id, message)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        for user_id, message in messages:
            self.bus.publish(user_id, message)

    async def subscribe(self, user_id: str) -> None:
        if not self.connected.is_set():
            raise BrokerUnavailable("pub/sub down: not connected")
        try:
            await asyncio.shield(self._queue(True, user_id))
        except BrokerUnavailable:
            raise BrokerUnavailable(f"subscribe for {user_id!r} not confirmed") from None

    async def unsubscribe(self, user_id: str) -> None:
        if self.connected.is_set():
            await asyncio.shield(self._queue(False, user_id))

    def _queue(self, subscribe: bool, user_id: str) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        if not self._outgoing:
            loop.call_soon(self._flush)
        future = loop.create_future()
        self._outgoing.append((subscribe, user_id, future))
        return future

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if any(subscribe for subscribe, _, _ in outgoing):
            self.subscribe_commands += 1
        for subscribe, user_id, future in outgoing:
            if future.done():
                continue
            if not self.connected.is_set():
                future.set_exception(BrokerUnavailable("pub/sub link lost"))
                continue
            if subscribe:
                self._subscribed.add(user_id)
            else:
                self._subscribed.discard(user_id)
            future.set_result(None)

    def offer(self, user_id: str, message: bytes) -> bool:
        """The bus hands a publish to this node: delivered later in the loop, in order."""
        if not self.connected.is_set() or user_id not in self._subscribed:
            return False
        asyncio.get_running_loop().call_soon(self._deliver, self._link, user_id, message)
        return True

    def _deliver(self, link: int, user_id: str, message: bytes) -> None:
        if link != self._link or user_id not in self._subscribed:
            return  # lost with its link, or unsubscribed meanwhile
        try:
            self._on_message(user_id, message)
        except Exception:
            logger.exception("delivering a message for %s failed", user_id)

    def drop_link(self) -> None:
        """Simulate a lost link (Redis killed the connection): what is in flight is lost,
        subscribes fail until the broker has reconnected and resubscribed everyone."""
        self._disconnect()
        self._lost.set()

    async def run(self) -> None:
        try:
            while True:
                await self.bus.wait_up()
                await self._connect()
                await self._lost.wait()
                self._disconnect()
                await asyncio.sleep(self._reconnect_delay)
        finally:
            self._disconnect()

    async def close(self) -> None:
        self._disconnect()
        self.bus.detach(self)

    async def _connect(self) -> None:
        """Subscribe every user, looking again until nobody arrived meanwhile."""
        self._lost.clear()
        subscribed: set[str] = set()
        while True:
            wanted = set(self._users())
            if wanted == subscribed:
                break
            subscribed = wanted
            self.subscribe_commands += 1
            await asyncio.sleep(0)  # the round trip, during which users come and go
        if self._lost.is_set() or not self.bus.up:
            return  # lost while connecting: run() starts over
        self._subscribed = subscribed
        self._link += 1
        self.links += 1
        self.connected.set()
        self._on_recovered()

    def _disconnect(self) -> None:
        self.connected.clear()
        self._subscribed = set()
        self._link += 1
