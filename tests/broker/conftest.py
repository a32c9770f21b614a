"""Each contract test runs against both brokers: RedisBroker on the real Redis, and
MemoryBroker, its in-process twin. A `Kit` makes brokers of one kind and breaks their links."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
import uvloop

from shared import keys
from shared.broker import MemoryBroker, MemoryBus, RedisBroker
from shared.broker.link import command

AnyBroker = RedisBroker | MemoryBroker


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Both loops: the servers run on uvloop, whose transports are not asyncio's classes."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


class Recorder:
    """What a broker hands its node: messages per user, recoveries, the users it holds."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.recoveries = 0
        self.users: list[str] = []
        self.changed = asyncio.Event()

    def on_message(self, user_id: str, data: bytes) -> None:
        self.messages.append((user_id, data))
        self.changed.set()

    def on_recovered(self) -> None:
        self.recoveries += 1
        self.changed.set()

    def of(self, user_id: str) -> list[bytes]:
        return [data for user, data in self.messages if user == user_id]

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def eventually(check: Callable[[], bool], within: float = 10) -> None:
    """Poll a state no callback announces (a link's health, a metric)."""
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {within} s")


class Kit:
    """Makes brokers of one kind, runs them, and stops everything it made."""

    def __init__(self, kind: str, redis_url: str | None) -> None:
        self.kind = kind
        self.redis_url = redis_url
        self.bus = MemoryBus()
        self.tag = uuid.uuid4().hex[:10]  # channels are server-wide: users unique per test
        self._made: list[tuple[AnyBroker, asyncio.Task[None] | None]] = []
        self._raw: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def user(self, name: str) -> str:
        return f"bt-{self.tag}-{name}"

    def make(
        self,
        rec: Recorder,
        users: Callable[[], Iterable[str]] | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
    ) -> AnyBroker:
        users = users if users is not None else (lambda: list(rec.users))
        on_message = on_message if on_message is not None else rec.on_message
        broker: AnyBroker
        if self.kind == "memory":
            broker = MemoryBroker(
                self.bus, on_message=on_message, users=users, on_recovered=rec.on_recovered
            )
        else:
            assert self.redis_url is not None
            broker = RedisBroker(
                self.redis_url,
                node_id=f"bt-{self.tag}-{len(self._made)}",
                on_message=on_message,
                users=users,
                on_recovered=rec.on_recovered,
                probe_interval=0.2,
            )
        self._made.append((broker, None))
        return broker

    async def start(
        self,
        rec: Recorder,
        users: Callable[[], Iterable[str]] | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
    ) -> AnyBroker:
        if self.redis_url is not None and self._raw is None:
            where = urlsplit(self.redis_url)
            self._raw = await asyncio.open_connection(where.hostname, where.port or 6379)
        broker = self.make(rec, users, on_message)
        task = asyncio.create_task(broker.run())
        self._made[-1] = (broker, task)
        await asyncio.wait_for(broker.connected.wait(), 10)
        return broker

    async def receivers(self, user: str, data: bytes) -> int:
        """Publish from outside any broker: how many subscribed nodes got it (PUBLISH's
        answer), which says whether the server had the subscription when the message came."""
        if self.kind == "memory":
            return self.bus.publish(user, data)
        if self._raw is None:  # connected before the first subscribe returns
            raise RuntimeError("call kit.start() first")
        reader, writer = self._raw
        # Written at once, no await first: it reaches Redis before anything sent later.
        writer.write(command(b"PUBLISH", keys.user_channel(user).encode(), data))
        answer = await reader.readline()
        assert answer.startswith(b":"), answer
        return int(answer[1:])

    async def kill(self, broker: AnyBroker) -> None:
        """Cut the subscriber link from the server's side, as Redis does to a slow reader."""
        if isinstance(broker, MemoryBroker):
            broker.drop_link()
            return
        assert self.redis_url is not None
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            mine = [c for c in await client.client_list() if c["name"] == broker.client_name]
            assert len(mine) == 1, mine
            # CLIENT KILL TYPE pubsub, narrowed to this link: other sessions share the server.
            assert await client.client_kill_filter(_id=mine[0]["id"], _type="pubsub") == 1
        finally:
            await client.aclose()

    async def close(self) -> None:
        for broker, task in self._made:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await broker.close()
        if self._raw is not None:
            self._raw[1].close()


@pytest.fixture(params=["memory", "redis"])
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    kit = Kit(request.param, url)
    yield kit
    await kit.close()
