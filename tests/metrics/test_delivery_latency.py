"""Delivery latency runs from the commit (createdAt) to the frame written to the socket."""

from __future__ import annotations

import asyncio
import contextlib
import time

from gateway.connection import Connection
from gateway.metrics import REGISTRY
from shared.models import Notification


class GatedSocket:
    """A socket whose writes wait for `gate`: a frame can sit queued, not yet written."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[str] = []
        self.wrote = asyncio.Event()

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(text)
        self.wrote.set()


async def nothing_stored(after_seq: int, limit: int) -> list[Notification]:
    return []


def latency(part: str) -> float:
    return REGISTRY.get_sample_value(f"tocsin_gateway_delivery_latency_seconds_{part}") or 0.0


async def wait_sent(sock: GatedSocket, count: int) -> None:
    async with asyncio.timeout(5):
        while len(sock.sent) < count:
            sock.wrote.clear()
            await sock.wrote.wait()


async def test_observed_when_written_not_when_queued() -> None:
    sock = GatedSocket()
    conn = Connection(
        sock,  # type: ignore[arg-type]
        "user-1",
        "node/1",
        nothing_stored,
        queue_size=16,
        buffer_bytes=65_536,
        page_size=10,
    )
    writer = asyncio.create_task(conn.write_loop())
    try:
        conn.request_sync(initial=True)  # the empty backlog batch; then the socket is live
        sock.gate.set()
        await wait_sent(sock, 1)
        sock.gate.clear()
        count, total = latency("count"), latency("sum")
        conn.offer(1, '{"type":"notification:new","seq":1}', created=time.time() - 0.25)
        await asyncio.sleep(0.2)  # queued, not written: nothing observed yet
        assert latency("count") == count
        sock.gate.set()
        await wait_sent(sock, 2)
        assert latency("count") == count + 1
        # 0.25 s old when offered, plus the 0.2 s it waited for the socket.
        assert 0.45 <= latency("sum") - total < 5
        conn.offer(2, '{"type":"notification:new","seq":2}')  # no createdAt: not observed
        await wait_sent(sock, 3)
        assert latency("count") == count + 1
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
