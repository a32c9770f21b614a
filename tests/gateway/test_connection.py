"""Connection ordering, de-duplication, gap filling and bounds, against a fake socket."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.connection import SLOW_CONSUMER, Connection
from gateway.metrics import REGISTRY
from shared import frames
from shared.models import Notification


def make(seq: int, **extra: Any) -> Notification:
    return Notification(
        id=f"id-{seq}", user_id="u", seq=seq, type="system:alert", title=f"t{seq}", body="",
        action_url=None, data={}, created_at=datetime.now(UTC), **extra,
    )  # fmt: skip


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.changed = asyncio.Condition()

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(json.loads(text))
        async with self.changed:
            self.changed.notify_all()

    def seqs(self) -> list[int]:
        out: list[int] = []
        for frame in self.sent:
            if frame["type"] == frames.NEW:
                out.append(frame["seq"])
            elif frame["type"] == frames.BATCH:
                out.extend(n["seq"] for n in frame["notifications"])
        return out


class Store:
    def __init__(self, count: int = 0) -> None:
        self.rows = [make(i) for i in range(1, count + 1)]
        self.reads = 0

    async def fetch(self, after: int, limit: int) -> list[Notification]:
        self.reads += 1
        return [n for n in self.rows if n.seq > after][:limit]

    def add(self) -> str:
        n = make(len(self.rows) + 1)
        self.rows.append(n)
        return frames.new_notification(n).decode()


def connection(store: Store, sock: FakeSocket, **kw: Any) -> Connection:
    opts: dict[str, Any] = {"queue_size": 64, "buffer_bytes": 1 << 20, "page_size": 3, **kw}
    return Connection(sock, "u", "c1", store.fetch, **opts)  # type: ignore[arg-type]


async def run(conn: Connection, until: Any) -> None:
    writer = asyncio.create_task(conn.write_loop())
    sock: FakeSocket = conn.websocket  # type: ignore[assignment]
    try:
        async with asyncio.timeout(5), sock.changed:
            await sock.changed.wait_for(until)
    finally:
        writer.cancel()


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_backlog_in_pages_then_live_without_gap_or_duplicate() -> None:
    frames_before = sample("tocsin_gateway_frames_sent_total")
    backlog_before = sample("tocsin_gateway_resume_backlog_sum")
    store, sock = Store(7), FakeSocket()
    conn = connection(store, sock)
    conn.last_seq = 2
    # Live frames that arrive while the backlog is read are held, then de-duplicated.
    conn.offer(8, store.add())
    conn.offer(7, frames.new_notification(store.rows[6]).decode())
    conn.request_sync(initial=True)
    conn.offer(9, store.add())
    await run(conn, lambda: sock.seqs()[-1:] == [9])
    assert sock.seqs() == list(range(3, 10))
    batches = [f for f in sock.sent if f["type"] == frames.BATCH]
    assert [b["more"] for b in batches] == [True, True, False]
    assert sample("tocsin_gateway_frames_sent_total") - frames_before == len(sock.sent)
    in_batches = sum(len(b["notifications"]) for b in batches)
    assert sample("tocsin_gateway_resume_backlog_sum") - backlog_before == in_batches


async def test_initial_sync_with_empty_backlog_sends_final_empty_batch() -> None:
    store, sock = Store(0), FakeSocket()
    conn = connection(store, sock)
    conn.request_sync(initial=True)
    await run(conn, lambda: bool(sock.sent))
    assert sock.sent == [{"type": frames.BATCH, "notifications": [], "more": False}]


async def test_out_of_order_live_frames_are_reordered_from_the_store() -> None:
    store, sock = Store(0), FakeSocket()
    conn = connection(store, sock)
    conn.request_sync(initial=True)
    await run(conn, lambda: bool(sock.sent))
    first, second = store.add(), store.add()
    conn.offer(2, second)  # published before seq 1: the store fills the gap
    conn.offer(1, first)
    await run(conn, lambda: sock.seqs()[-1:] == [2])
    assert sock.seqs() == [1, 2]


async def test_expired_and_archived_are_skipped_but_cursor_advances() -> None:
    store, sock = Store(0), FakeSocket()
    past = datetime.now(UTC) - timedelta(seconds=1)
    store.rows = [make(1), make(2, expires_at=past), make(3, archived_at=past), make(4)]
    conn = connection(store, sock, page_size=10)
    conn.request_sync(initial=True)
    await run(conn, lambda: bool(sock.sent))
    assert sock.seqs() == [1, 4]
    assert conn.last_seq == 4


async def test_duplicate_live_frame_is_dropped() -> None:
    store, sock = Store(0), FakeSocket()
    conn = connection(store, sock)
    conn.request_sync(initial=True)
    await run(conn, lambda: bool(sock.sent))
    text = store.add()
    conn.offer(1, text)
    conn.offer(1, text)
    await run(conn, lambda: sock.seqs() == [1])
    await asyncio.sleep(0.02)
    assert sock.seqs() == [1]


async def test_slow_consumer_is_closed_when_the_buffer_fills() -> None:
    store, sock = Store(0), FakeSocket()
    conn = connection(store, sock, buffer_bytes=4096)
    conn.request_sync(initial=True)
    await run(conn, lambda: bool(sock.sent))
    sock.gate.clear()  # the client stops reading
    writer = asyncio.create_task(conn.write_loop())
    for _ in range(100):
        conn.offer(conn.last_seq + 1, store.add())
    writer.cancel()
    assert conn.closing and conn.close_code == SLOW_CONSUMER
    assert conn.done.is_set()
    assert conn._queued_bytes <= 4096 + 1024


async def test_graceful_close_sends_queued_frames_before_done() -> None:
    store, sock = Store(0), FakeSocket()
    conn = connection(store, sock)
    conn.send('{"type":"reconnect","delayMs":5}')
    conn.close(1012, "service restart", flush=True)
    assert not conn.done.is_set()
    writer = asyncio.create_task(conn.write_loop())
    await asyncio.wait_for(conn.done.wait(), 2)
    writer.cancel()
    assert sock.sent == [{"type": "reconnect", "delayMs": 5}]
    assert conn.close_code == 1012


async def test_abrupt_close_is_done_at_once() -> None:
    conn = connection(Store(0), FakeSocket())
    conn.send('{"type":"pong","t":1}')
    conn.close(SLOW_CONSUMER, "slow consumer", flush=False)
    assert conn.done.is_set()
    conn.send('{"type":"pong","t":2}')  # ignored once closing
    assert conn._queue.qsize() == 1


async def test_resync_before_welcome_is_ignored_and_early_events_follow_the_welcome() -> None:
    store, sock = Store(5), FakeSocket()
    conn = connection(store, sock, page_size=10)
    conn.request_sync()  # a broker recovery during the handshake
    conn.send_event('{"type":"notification:read","ids":["x"]}')
    assert sock.sent == [] and store.reads == 0
    conn.last_seq = 3
    conn.send('{"type":"welcome"}')
    conn.request_sync(initial=True)
    await run(conn, lambda: len(sock.sent) == 3)
    assert [f["type"] for f in sock.sent] == ["welcome", "notification:read", frames.BATCH]
    assert sock.seqs() == [4, 5]


async def test_a_multi_page_gap_fill_ends_with_more_false() -> None:
    store, sock = Store(0), FakeSocket()
    conn = connection(store, sock, page_size=2)
    conn.request_sync(initial=True)
    await run(conn, lambda: bool(sock.sent))
    texts = [store.add() for _ in range(4)]
    conn.offer(4, texts[3])  # 1..3 never came live: filled from the store in pages
    await run(conn, lambda: sock.sent[-1].get("more") is False and len(sock.sent) > 1)
    assert sock.seqs() == [1, 2, 3, 4]
    assert [f["more"] for f in sock.sent[1:]] == [True, True, False]


async def test_held_frames_are_bounded_in_size_too() -> None:
    store, sock = Store(0), FakeSocket()
    conn = connection(store, sock, buffer_bytes=4096)
    for _ in range(50):  # before the welcome everything is held
        conn.offer(len(store.rows) + 1, store.add())
    assert conn._held_chars <= 4096 and len(conn._held) < 50
    conn.request_sync(initial=True)
    await run(conn, lambda: sock.seqs()[-1:] == [50])
    assert sock.seqs() == list(range(1, 51))  # what did not fit came from the store
