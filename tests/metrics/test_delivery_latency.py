"""Delivery latency runs from the commit (createdAt) to the frame written to the user's
sockets: once per notification per node, however many tabs hold it; a frame held back for a
gap is observed when it is finally written."""

from __future__ import annotations

import asyncio
import time

from gateway.connection import Connection
from gateway.hub import Hub
from gateway.metrics import REGISTRY
from gateway.wire import text_frame
from shared import envelope
from shared.models import Notification
from tests.gateway.fakes import FakeSocket


class Confirmed:
    async def subscribe(self, user_id: str) -> None:
        return None

    async def unsubscribe(self, user_id: str) -> None:
        return None

    async def joined(self, user_id: str) -> None:
        return None

    async def left(self, user_id: str) -> None:
        return None


async def nothing_stored(after_seq: int, limit: int) -> list[Notification]:
    return []


def latency(part: str) -> float:
    return REGISTRY.get_sample_value(f"tocsin_gateway_delivery_latency_seconds_{part}") or 0.0


def frame(seq: int) -> bytes:
    return b'{"type":"notification:new","seq":%d}' % seq


async def test_observed_once_per_notification_when_written() -> None:
    hub = Hub(Confirmed(), Confirmed())
    sockets = [FakeSocket(), FakeSocket()]
    conns = [
        Connection(sock, "user-1", f"node/{i}", nothing_stored, held_limit=16,
                   buffer_bytes=65_536, page_size=10)
        for i, sock in enumerate(sockets)
    ]  # fmt: skip
    for conn in conns:
        await hub.add(conn)
        conn.request_sync(initial=True)  # the empty backlog batch; then the socket is live
    async with asyncio.timeout(5):
        while not all(s.sent for s in sockets) or any(c.syncing for c in conns):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    count, total = latency("count"), latency("sum")
    created_ms = int((time.time() - 0.25) * 1000)
    hub.deliver("user-1", envelope.notification(1, created_ms, frame(1)))
    assert [s.seqs()[-1:] for s in sockets] == [[1], [1]]
    assert latency("count") == count + 1  # two tabs, one observation
    assert 0.25 <= latency("sum") - total < 5
    hub.deliver("user-2", envelope.notification(1, created_ms, frame(1)))  # no tab here
    assert latency("count") == count + 1


async def test_a_held_frame_is_observed_when_released() -> None:
    sock = FakeSocket()
    conn = Connection(
        sock, "user-1", "node/1", nothing_stored, held_limit=16, buffer_bytes=65_536,
        page_size=10,
    )  # fmt: skip
    count = latency("count")
    conn.offer(1, text_frame(frame(1)), created=time.time() - 0.1)  # before the welcome: held
    assert latency("count") == count and sock.sent == []
    conn.request_sync(initial=True)
    async with asyncio.timeout(5):
        while sock.seqs() != [1]:  # noqa: ASYNC110 (the sync task writes it)
            await asyncio.sleep(0.01)
    assert latency("count") == count + 1
