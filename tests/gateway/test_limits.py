"""Per-socket limits: hello timeout, frame size, rate; bad client frames keep the socket."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from tests.gateway.cluster import Cluster, new_user, token
from tests.support.tabs import Tab


async def closed_with(ws: websockets.ClientConnection) -> int | None:
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(15):
            while True:
                await ws.recv()
    return ws.close_code


async def test_silent_socket_is_closed_after_the_hello_timeout(cluster: Cluster) -> None:
    async with websockets.connect(cluster.ws_url(0), open_timeout=5) as ws:
        assert await closed_with(ws) == 4004


async def test_oversized_frame_closes_with_1009(cluster: Cluster) -> None:
    tab = await Tab([cluster.ws_url(0)], token(new_user()), reconnect=False).start()
    await tab.send({"type": "ping", "t": 1, "pad": "x" * 70_000})
    await tab.wait(lambda: bool(tab.close_codes))
    assert tab.close_codes == [1009]


async def test_flooding_client_is_closed_with_4008(cluster: Cluster) -> None:
    tab = await Tab([cluster.ws_url(0)], token(new_user()), reconnect=False).start()
    for i in range(200):
        try:
            await tab.send({"type": "ping", "t": i})
        except websockets.ConnectionClosed:
            break
    await tab.wait(lambda: bool(tab.close_codes))
    assert tab.close_codes == [4008]
    pongs = [e for e in tab.events if e["type"] == "pong"]
    assert 30 <= len(pongs) <= 60  # the burst (40) went through, the flood did not


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "ack", "seq": -1}, "bad_frame"),
        ({"type": "ack", "seq": "3"}, "bad_frame"),
        ({"type": "read", "id": 5}, "bad_frame"),
        ({"type": "read-all", "upToSeq": True}, "bad_frame"),
        ({"type": "teleport"}, "unknown_type"),
    ],
)
async def test_bad_frames_get_an_error_and_keep_the_socket(
    cluster: Cluster, frame: dict[str, object], code: str
) -> None:
    tab = await Tab([cluster.ws_url(1)], token(new_user()), reconnect=False).start()
    try:
        await tab.send({**frame, "ref": "bad"})
        await tab.send({"type": "ping", "t": 7})
        await tab.wait(lambda: any(e["type"] == "pong" for e in tab.events))
        error = next(e for e in tab.events if e.get("ref") == "bad")
        assert error["type"] == "error" and error["code"] == code
        assert not tab.close_codes
    finally:
        await tab.stop()


async def test_sync_count_answers_the_servers_counts(cluster: Cluster) -> None:
    user = new_user()
    async with cluster.client() as client:
        await client.send(user, "system:alert", "one", "")
    tab = await Tab([cluster.ws_url(2)], token(user), reconnect=False).start()
    try:
        await tab.send({"type": "sync-count"})
        await tab.wait(lambda: any(e["type"] == "unread-count" for e in tab.events))
        count = next(e for e in tab.events if e["type"] == "unread-count")
        assert (count["unreadCount"], count["unseenCount"]) == (1, 1)
    finally:
        await tab.stop()
