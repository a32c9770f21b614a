"""Connection ordering, de-duplication, gap filling, backpressure and bounds, against a fake
socket."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.connection import SLOW_CONSUMER, Connection
from gateway.metrics import REGISTRY
from gateway.wire import text_frame
from shared import frames
from shared.models import Notification
from tests.gateway.fakes import FakeSocket


def make(seq: int, **extra: Any) -> Notification:
    return Notification(
        id=f"id-{seq}", user_id="u", seq=seq, type="system:alert", title=f"t{seq}", body="",
        action_url=None, data={}, created_at=datetime.now(UTC), **extra,
    )  # fmt: skip


def wire(payload: str | bytes) -> bytes:
    return text_frame(payload.encode() if isinstance(payload, str) else payload)


class Store:
    def __init__(self, count: int = 0) -> None:
        self.rows = [make(i) for i in range(1, count + 1)]
        self.reads = 0

    async def fetch(self, after: int, limit: int) -> list[Notification]:
        self.reads += 1
        return [n for n in self.rows if n.seq > after][:limit]

    def add(self) -> bytes:
        n = make(len(self.rows) + 1)
        self.rows.append(n)
        return wire(frames.new_notification(n))


def connection(store: Store, sock: FakeSocket, **kw: Any) -> Connection:
    opts: dict[str, Any] = {"held_limit": 64, "buffer_bytes": 1 << 20, "page_size": 3, **kw}
    return Connection(sock, "u", "c1", store.fetch, **opts)


async def run(conn: Connection, until: Any) -> None:
    """Let the connection's sync task work until `until()` holds (frames are written
    synchronously, so there is nothing else to drive)."""
    async with asyncio.timeout(5):
        while not until():  # noqa: ASYNC110 (writes and the sync task both change it)
            await asyncio.sleep(0.001)


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
    conn.offer(7, wire(frames.new_notification(store.rows[6])))
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
    sock.reading = False  # the client stops reading
    for _ in range(100):
        conn.offer(conn.last_seq + 1, store.add())
    assert conn.closing
    assert sock.closed == (SLOW_CONSUMER, "slow consumer")
    assert sock.pending <= 4096


async def test_a_backlog_waits_while_the_transport_is_paused_then_4009_after_the_stall() -> None:
    store, sock = Store(40), FakeSocket()
    conn = connection(store, sock, buffer_bytes=2048, page_size=5, stall_timeout=0.3)
    sock.reading = False
    conn.request_sync(initial=True)
    await run(conn, lambda: not sock.writable.is_set())
    written = len(sock.seqs())
    assert 0 < written < 40  # paused mid-backlog: no more pages until it drains
    await run(conn, lambda: conn.closing)
    assert sock.closed == (SLOW_CONSUMER, "slow consumer")
    assert len(sock.seqs()) == written


async def test_a_backlog_resumes_when_the_reader_drains() -> None:
    store, sock = Store(40), FakeSocket()
    conn = connection(store, sock, buffer_bytes=2048, page_size=5, stall_timeout=2)
    sock.reading = False
    conn.request_sync(initial=True)
    await run(conn, lambda: not sock.writable.is_set())
    sock.read_again()
    await run(conn, lambda: sock.seqs()[-1:] == [40])
    assert sock.seqs() == list(range(1, 41)) and not conn.closing


async def test_close_follows_what_was_written_and_later_sends_are_dropped() -> None:
    store, sock = Store(0), FakeSocket()
    conn = connection(store, sock)
    conn.send_json(b'{"type":"reconnect","delayMs":5}')
    conn.close(1012, "service restart")
    assert sock.closed == (1012, "service restart")
    assert not conn.send(wire('{"type":"pong","t":2}'))  # ignored once closing
    assert sock.sent == [{"type": "reconnect", "delayMs": 5}]
    closes_1011 = REGISTRY.get_sample_value("tocsin_gateway_closes_total", {"code": "1011"})
    conn.close(1011, "again")  # the first close wins: not sent, not counted
    assert sock.closed == (1012, "service restart")
    after = REGISTRY.get_sample_value("tocsin_gateway_closes_total", {"code": "1011"})
    assert after == closes_1011


async def test_resync_before_welcome_is_ignored_and_early_events_follow_the_welcome() -> None:
    store, sock = Store(5), FakeSocket()
    conn = connection(store, sock, page_size=10)
    conn.request_sync()  # a broker recovery during the handshake
    conn.send_event(wire('{"type":"notification:read","ids":["x"]}'))
    assert sock.sent == [] and store.reads == 0
    conn.last_seq = 3
    conn.send_json(b'{"type":"welcome"}')
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
    assert conn._held_bytes <= 4096 and len(conn._held) < 50
    conn.request_sync(initial=True)
    await run(conn, lambda: sock.seqs()[-1:] == [50])
    assert sock.seqs() == list(range(1, 51))  # what did not fit came from the store
