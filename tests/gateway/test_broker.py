"""The node's pub/sub link against the real Redis: confirmed subscribes, and recovery
after Redis kills the connection (as it does to a subscriber over its output buffer)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.broker import Broker, BrokerUnavailable


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.recoveries = 0
        self.channels: list[str] = []
        self.changed = asyncio.Event()

    def on_message(self, channel: str, data: bytes) -> None:
        self.messages.append((channel, data))
        self.changed.set()

    def on_recovered(self) -> None:
        self.recoveries += 1
        self.changed.set()

    async def until(self, predicate: object) -> None:
        async with asyncio.timeout(10):
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def broker(redis_url: str) -> AsyncIterator[tuple[Broker, Recorder]]:
    rec = Recorder()
    broker = Broker(
        redis_url, "test-node", rec.on_message, lambda: list(rec.channels), rec.on_recovered,
        probe_interval=0.2,
    )  # fmt: skip
    task = asyncio.create_task(broker.run())
    await asyncio.wait_for(broker.connected.wait(), 5)
    yield broker, rec
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await broker.close()


async def test_a_publish_right_after_subscribe_returns_is_delivered(
    broker: tuple[Broker, Recorder], redis_client: aioredis.Redis
) -> None:
    node, rec = broker
    for i in range(20):
        channel = f"user:confirm-{i}"
        await node.subscribe(channel)
        # No sleep: subscribe() returned only after Redis confirmed it.
        assert await redis_client.publish(channel, b'{"type":"x"}') == 1
    await rec.until(lambda: len(rec.messages) == 20)


async def test_killed_pubsub_connection_is_replaced_resubscribed_and_resynced(
    broker: tuple[Broker, Recorder], redis_client: aioredis.Redis
) -> None:
    node, rec = broker
    rec.channels.append("user:survivor")
    await node.subscribe("user:survivor")
    recoveries = rec.recoveries
    killed = await redis_client.client_kill_filter(_type="pubsub")
    assert killed >= 1
    await rec.until(lambda: rec.recoveries > recoveries)
    # Recovery is announced only once the resubscribe is confirmed: no retry needed.
    assert await redis_client.publish("user:survivor", b"after") == 1
    await rec.until(lambda: ("user:survivor", b"after") in rec.messages)


async def test_subscribe_while_disconnected_raises_so_the_hub_can_degrade(
    redis_url: str,
) -> None:
    rec = Recorder()
    node = Broker(redis_url, "idle-node", rec.on_message, list, rec.on_recovered)
    with pytest.raises(BrokerUnavailable):
        await node.subscribe("user:nobody")
    await node.close()


async def test_a_user_arriving_while_the_link_connects_is_subscribed_too(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    rec = Recorder()
    looks = 0

    def channels() -> list[str]:
        nonlocal looks
        looks += 1  # the user's first socket lands between two looks at the hub
        return ["user:early"] if looks == 1 else ["user:early", "user:late"]

    node = Broker(redis_url, "race-node", rec.on_message, channels, rec.on_recovered)
    listener = aioredis.Redis.from_url(redis_url).pubsub()
    try:
        await asyncio.wait_for(node._subscribe_all(listener), 10)
        counts = dict(await redis_client.pubsub_numsub("user:early", "user:late"))
        assert counts == {b"user:early": 1, b"user:late": 1}
    finally:
        await listener.aclose()  # type: ignore[no-untyped-call]
        await node.close()
