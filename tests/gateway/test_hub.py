"""The hub on the in-memory broker (shared/broker/memory.py): fan-out by user across nodes,
routing without decoding, resync after a lost link, unsubscribe on the last tab. No server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from gateway.connection import Connection
from gateway.hub import Hub
from shared import envelope, frames
from shared.broker.memory import MemoryBroker, MemoryBus
from shared.models import Counts, Notification
from tests.gateway.fakes import FakeSocket


class NoPresence:
    async def joined(self, user_id: str) -> None:
        return None

    async def left(self, user_id: str) -> None:
        return None


@dataclass
class Store:
    rows: dict[str, list[Notification]] = field(default_factory=dict)

    def add(self, user: str) -> Notification:
        rows = self.rows.setdefault(user, [])
        n = Notification(
            id=f"{user}-{len(rows) + 1}", user_id=user, seq=len(rows) + 1, type="system:alert",
            title="t", body="", action_url=None, data={}, created_at=datetime.now(UTC),
        )  # fmt: skip
        rows.append(n)
        return n

    def fetch(self, user: str) -> Callable[[int, int], asyncio.Future[list[Notification]]]:
        async def rows(after: int, limit: int) -> list[Notification]:
            return [n for n in self.rows.get(user, []) if n.seq > after][:limit]

        return rows  # type: ignore[return-value]


@dataclass
class Node:
    hub: Hub
    broker: MemoryBroker
    task: asyncio.Task[None]


async def start_node(bus: MemoryBus) -> Node:
    holder: list[Hub] = []
    broker = MemoryBroker(
        bus,
        on_message=lambda user, data: holder[0].deliver(user, data),
        users=lambda: holder[0].users(),
        on_recovered=lambda: holder[0].resync_all(),
    )
    holder.append(Hub(broker, NoPresence()))
    task = asyncio.create_task(broker.run())
    await asyncio.wait_for(broker.connected.wait(), 2)
    return Node(holder[0], broker, task)


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    yield bus
    for broker in list(bus._brokers):
        await broker.close()


async def tab(node: Node, store: Store, user: str) -> tuple[Connection, FakeSocket]:
    sock = FakeSocket()
    conn = Connection(sock, user, f"c-{id(sock)}", store.fetch(user), held_limit=64,
                      buffer_bytes=1 << 20, page_size=50)  # fmt: skip
    await node.hub.add(conn)
    conn.request_sync(initial=True)
    await settle(lambda: bool(sock.sent) and not conn.syncing)
    return conn, sock


async def settle(until: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not until():  # noqa: ASYNC110 (brokers and sync tasks both change it)
            await asyncio.sleep(0.002)


def publish(producer: MemoryBroker, n: Notification) -> asyncio.Future[None]:
    ms = int(n.created_at.timestamp() * 1000)
    return asyncio.ensure_future(
        producer.publish(n.user_id, envelope.notification(n.seq, ms, frames.new_notification(n)))
    )


async def test_every_tab_of_the_user_on_every_node_gets_it_once_and_no_one_else(
    bus: MemoryBus,
) -> None:
    store, a, b = Store(), await start_node(bus), await start_node(bus)
    producer = MemoryBroker(bus)
    tabs = [await tab(a, store, "ana"), await tab(a, store, "ana"), await tab(b, store, "ana")]
    _, other = await tab(b, store, "bob")
    for _ in range(3):
        await publish(producer, store.add("ana"))
    await settle(lambda: all(sock.seqs() == [1, 2, 3] for _, sock in tabs))
    await asyncio.sleep(0.02)
    assert all(sock.seqs() == [1, 2, 3] for _, sock in tabs)
    assert other.seqs() == []
    # One frame per notification and tab; the payload is what the dispatcher encoded.
    assert [f["notification"]["id"] for f in tabs[2][1].sent[1:]] == ["ana-1", "ana-2", "ana-3"]


async def test_events_reach_live_tabs_and_malformed_messages_are_dropped(
    bus: MemoryBus, caplog: pytest.LogCaptureFixture
) -> None:
    store, node = Store(), await start_node(bus)
    producer = MemoryBroker(bus)
    _, sock = await tab(node, store, "ana")
    counts = Counts(unread=0, unseen=0)
    await producer.publish("ana", b"not an envelope")
    await producer.publish("ana", envelope.event(frames.state_change(frames.READ_ALL, counts)))
    await settle(lambda: len(sock.sent) == 2)
    assert sock.sent[1]["type"] == frames.READ_ALL
    assert any("malformed message for user ana" in r.getMessage() for r in caplog.records)
    assert all(r.levelno < logging.CRITICAL for r in caplog.records)


async def test_a_lost_link_resyncs_every_tab_from_the_store(bus: MemoryBus) -> None:
    store, node = Store(), await start_node(bus)
    producer = MemoryBroker(bus)
    _, sock = await tab(node, store, "ana")
    await publish(producer, store.add("ana"))
    await settle(lambda: sock.seqs() == [1])
    node.broker.drop_link()
    store.add("ana")  # committed while the link was down: its publish was lost
    store.add("ana")
    await settle(lambda: sock.seqs() == [1, 2, 3])
    assert node.broker.links == 2


async def test_the_last_tab_leaving_unsubscribes_the_node(bus: MemoryBus) -> None:
    store, node = Store(), await start_node(bus)
    first, second = await tab(node, store, "ana"), await tab(node, store, "ana")
    assert bus.publish("ana", b"e\n{}") == 1
    await node.hub.remove(first[0])
    assert bus.publish("ana", b"e\n{}") == 1  # one tab left
    await node.hub.remove(second[0])
    assert bus.publish("ana", b"e\n{}") == 0
    assert node.hub.users() == [] and node.hub.empty.is_set()
