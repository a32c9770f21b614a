"""Closes a client can act on: 4009 for a tab that stops reading (live or during a resume),
1011 with a reason for a failure after accept, 4013 past the per-user socket cap; backlog
batches bounded in bytes; the REST body limit.

Two gateways: gw0 waits 8 s for a stalled socket (TOCSIN_WS_CLOSE_DEADLINE), so a test can
start reading again well after the close was decided (later than the 2 s the session itself
waits) and still see the close frame; gw1 waits 1 s, so a test can watch the deadline pass
and the connection be let go."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from gateway.connection import MAX_BATCH_BYTES
from tests.gateway.cluster import Cluster, new_user, server_env, token
from tests.support.tabs import Tab

BODY, DATA = "x" * 4000, {"pad": "y" * 15_000}  # about 19 KB per notification frame
PATIENT, HASTY = 0, 1  # gateway indexes: close deadline 8 s and 1 s
READ_AGAIN_AFTER = 4.0  # seconds a stalled tab stays stalled after the close is decided


@pytest.fixture(scope="module")
def cluster(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    env = server_env(
        database_url,
        redis_url,
        TOCSIN_WS_SEND_BUFFER="262144",
        TOCSIN_REST_MAX_BODY="4096",
        TOCSIN_WS_CLOSE_DEADLINE="8",
    )
    cluster = Cluster(env, tmp_path_factory.mktemp("closes")).start(gateways=1)
    cluster.env = {**env, "TOCSIN_WS_CLOSE_DEADLINE": "1"}
    cluster.gateways.append(cluster.start_gateway(HASTY))
    yield cluster
    cluster.stop()


async def metric(cluster: Cluster, index: int, line_start: str) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{cluster.gateways[index].url}/metrics")).text
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    return 0.0


async def closes(cluster: Cluster, index: int, code: int) -> float:
    return await metric(cluster, index, f'tocsin_gateway_closes_total{{code="{code}"}}')


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20) -> None:
    for _ in range(int(within / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {within} s")


async def stalled_socket(cluster: Cluster, index: int, user: str) -> websockets.ClientConnection:
    """A client that reads nothing once hello is sent: a tiny TCP receive window, a one-frame
    queue (websockets then stops reading the socket) and no pings of its own."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", cluster.gateways[index].port))
    ws = await websockets.connect(
        cluster.ws_url(index), sock=sock, max_queue=1, ping_interval=None, open_timeout=5
    )
    await ws.send(json.dumps({"type": "hello", "v": 1, "token": token(user)}))
    return ws


TCP_STATES = {"01": "ESTABLISHED", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "07": "CLOSE"}


def server_side_state(server_port: int, client_port: int) -> str | None:
    """The gateway's end of one loopback TCP connection, from /proc/net/tcp (Linux)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(a.split(":")[1], 16) for a in fields[1:3])
        if (local, remote) == (server_port, client_port):
            return TCP_STATES.get(fields[3], fields[3])
    return None


async def read_until_closed(ws: websockets.ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(20):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason


async def flood(cluster: Cluster, user: str, until: Any, limit: int = 1500) -> None:
    """Large notifications, eight at a time, until `until()` holds (bounded in count)."""
    async with cluster.client() as client:
        for i in range(0, limit, 8):
            await asyncio.gather(
                *(
                    client.send(user, "system:alert", f"big {i + j}", BODY, data=DATA)
                    for j in range(8)
                )
            )
            if await until():
                return
    raise AssertionError(f"{limit} notifications sent and the condition never held")


async def backlog(cluster: Cluster, user: str, count: int) -> None:
    async with cluster.client() as client:
        for i in range(0, count, 10):
            await asyncio.gather(
                *(
                    client.send(user, "system:alert", f"old {i + j}", BODY, data=DATA)
                    for j in range(10)
                )
            )


# -- slow consumers ------------------------------------------------------------------------


async def test_a_tab_that_stops_reading_gets_4009_when_it_reads_again(cluster: Cluster) -> None:
    user = new_user()
    before = await closes(cluster, PATIENT, 4009)
    ws = await stalled_socket(cluster, PATIENT, user)

    async def closed() -> bool:
        return await closes(cluster, PATIENT, 4009) > before

    await flood(cluster, user, closed)
    await asyncio.sleep(READ_AGAIN_AFTER)
    # Within the deadline the close frame waits behind the buffered frames: reading again
    # drains them and then finds the close frame, not a dropped connection.
    assert await read_until_closed(ws) == (4009, "slow consumer")


async def test_a_tab_that_never_reads_again_is_aborted_after_the_deadline(cluster: Cluster) -> None:
    user = new_user()
    before = await closes(cluster, HASTY, 4009)
    ws = await stalled_socket(cluster, HASTY, user)

    async def closed() -> bool:
        return await closes(cluster, HASTY, 4009) > before

    await flood(cluster, user, closed)
    port = ws.local_address[1]

    async def let_go() -> bool:
        return server_side_state(cluster.gateways[HASTY].port, port) != "ESTABLISHED"

    # The node lets go of the connection by itself once the deadline (1 s) has passed,
    # however long the client keeps its window shut...
    await eventually(let_go, within=10)
    # ...and the close frame never left the server's own buffer: the client sees 1006.
    code, _ = await read_until_closed(ws)
    assert code == 1006


async def test_a_resume_that_does_not_drain_is_closed_with_4009(cluster: Cluster) -> None:
    user = new_user()
    # About 4.5 MB: more than the 256 KiB queue, the transport buffer and what the kernel
    # buffers on loopback (a flood of about 3.2 MB filled them all in a trial).
    await backlog(cluster, user, 240)
    before = await closes(cluster, PATIENT, 4009)
    ws = await stalled_socket(cluster, PATIENT, user)

    async def closed() -> bool:
        return await closes(cluster, PATIENT, 4009) > before

    await eventually(closed)  # the stall bound is the deadline (8 s here); it was 30 s
    await asyncio.sleep(READ_AGAIN_AFTER)
    assert await read_until_closed(ws) == (4009, "slow consumer")


# -- frames ---------------------------------------------------------------------------------


async def test_a_backlog_of_large_notifications_comes_in_batches_under_the_byte_limit(
    cluster: Cluster,
) -> None:
    user = new_user()
    await backlog(cluster, user, 40)  # one page (200), about 760 KB encoded
    sizes: list[int] = []
    seqs: list[int] = []
    mores: list[bool] = []
    async with websockets.connect(cluster.ws_url(PATIENT), max_size=None, open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token(user), "lastSeq": 0}))
        async with asyncio.timeout(15):
            while not mores or mores[-1]:
                raw = await ws.recv()
                frame = json.loads(raw)
                if frame["type"] == "notifications:batch":
                    sizes.append(len(raw.encode() if isinstance(raw, str) else raw))
                    seqs.extend(n["seq"] for n in frame["notifications"])
                    mores.append(frame["more"])
    assert seqs == list(range(1, 41))
    assert len(sizes) >= 3 and max(sizes) <= MAX_BATCH_BYTES
    assert mores == [True] * (len(mores) - 1) + [False]


# -- failures after accept -----------------------------------------------------------------


@pytest.fixture
async def failing_updates(database_url: str) -> AsyncIterator[str]:
    """A user whose notification updates fail inside PostgreSQL (a trigger raising): a real
    query error that is not "store unavailable"."""
    user = new_user()
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        "CREATE OR REPLACE FUNCTION tocsin_test_refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refused by test trigger'; END $$"
    )
    await conn.execute(
        f"CREATE TRIGGER tocsin_test_refuse_{user.replace('-', '_')}"
        " BEFORE UPDATE ON tocsin_notifications FOR EACH ROW"
        f" WHEN (OLD.user_id = '{user}') EXECUTE FUNCTION tocsin_test_refuse()"
    )
    try:
        yield user
    finally:
        await conn.execute(
            f"DROP TRIGGER tocsin_test_refuse_{user.replace('-', '_')} ON tocsin_notifications"
        )
        await conn.close()


async def test_a_query_error_after_accept_closes_with_1011_and_a_reason(
    cluster: Cluster, failing_updates: str
) -> None:
    user = failing_updates
    async with cluster.client() as client:
        sent = await client.send(user, "system:alert", "one", "")
    async with websockets.connect(cluster.ws_url(PATIENT), open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token(user)}))
        async with asyncio.timeout(10):
            while json.loads(await ws.recv()).get("more") is not False:
                pass
        await ws.send(json.dumps({"type": "read", "id": sent.id}))
        assert await read_until_closed(ws) == (1011, "internal error")


@pytest.fixture
async def hidden_seq_column(database_url: str) -> AsyncIterator[None]:
    """Every resume point query fails inside PostgreSQL (a column it names is gone) until
    the test ends: an error during the welcome, after the socket was accepted."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("ALTER TABLE tocsin_user_seq RENAME COLUMN last_seq TO last_seq_hidden")
    try:
        yield
    finally:
        await conn.execute("ALTER TABLE tocsin_user_seq RENAME COLUMN last_seq_hidden TO last_seq")
        await conn.close()


async def test_a_query_error_during_the_welcome_closes_with_1011(
    cluster: Cluster, hidden_seq_column: None
) -> None:
    async with websockets.connect(cluster.ws_url(HASTY), open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token(new_user())}))
        assert await read_until_closed(ws) == (1011, "internal error")


# -- limits ---------------------------------------------------------------------------------


async def test_the_21st_socket_of_a_user_gets_4013_and_the_others_keep_working(
    cluster: Cluster,
) -> None:
    user = new_user()
    tabs = [
        await Tab([cluster.ws_url(HASTY)], token(user), reconnect=False).start() for _ in range(20)
    ]
    try:
        async with websockets.connect(cluster.ws_url(HASTY), open_timeout=5) as extra:
            await extra.send(json.dumps({"type": "hello", "v": 1, "token": token(user)}))
            code, reason = await read_until_closed(extra)
        assert (code, reason) == (4013, "too many sockets for this user on this node")
        async with cluster.client() as client:
            sent = await client.send(user, "system:alert", "still here", "")
        for tab in tabs:
            await tab.wait_seq(sent.seq)
            assert not tab.close_codes
        # Another node counts its own sockets: the same user is welcome there.
        other = await Tab([cluster.ws_url(PATIENT)], token(user), reconnect=False).start()
        await other.stop()
    finally:
        for tab in tabs:
            await tab.stop()


@pytest.mark.parametrize("chunked", [False, True])
async def test_rest_bodies_over_the_limit_are_413_in_the_error_shape(
    cluster: Cluster, chunked: bool
) -> None:
    body = json.dumps({"upToSeq": 1, "pad": "z" * 10_000}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    async with httpx.AsyncClient(base_url=cluster.gateways[PATIENT].url, timeout=5) as http:
        answer = await http.post(
            "/v1/notifications/read-all",
            content=pieces() if chunked else body,  # chunked: no Content-Length at all
            headers={"Authorization": f"Bearer {token(new_user())}"},
        )
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large" and "4096" in error["message"]


async def test_rest_bodies_under_the_limit_still_work(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateways[PATIENT].url, timeout=5) as http:
        answer = await http.post(
            "/v1/notifications/read-all",
            json={"upToSeq": 1},
            headers={"Authorization": f"Bearer {token(new_user())}"},
        )
    assert answer.status_code == 200 and answer.json()["updated"] == 0
