"""Delivery across three gateway processes: every tab, exactly once, in order, no gaps."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import httpx
import websockets

from tests.gateway.cluster import Cluster, new_user, token
from tests.support.tabs import Tab


async def send(cluster: Cluster, user: str, count: int, *, concurrent: bool = False) -> None:
    async with cluster.client() as client:
        sends = [client.send(user, "message:received", f"m{i}", "hi") for i in range(count)]
        if concurrent:
            await asyncio.gather(*sends)
        else:
            for one in sends:
                await one


async def test_tabs_on_three_nodes_each_get_every_notification_once_in_order(
    cluster: Cluster,
) -> None:
    user = new_user()
    tabs = [Tab([cluster.ws_url(i % 3)], token(user)) for i in range(4)]
    await asyncio.gather(*(tab.start() for tab in tabs))
    try:
        await send(cluster, user, 40, concurrent=True)
        for tab in tabs:
            await tab.wait_seq(40)
        await asyncio.sleep(0.2)  # anything extra (a duplicate) would arrive by now
        for tab in tabs:
            assert tab.arrivals == list(range(1, 41))
    finally:
        await asyncio.gather(*(tab.stop() for tab in tabs))


async def test_offline_user_gets_everything_on_connect(cluster: Cluster) -> None:
    user = new_user()
    await send(cluster, user, 5)
    tab = await Tab([cluster.ws_url(1)], token(user)).start()
    try:
        assert tab.arrivals == [1, 2, 3, 4, 5]
        assert tab.welcomes[0]["unreadCount"] == 5
        assert tab.welcomes[0]["lastSeq"] == 5
    finally:
        await tab.stop()


async def test_resume_from_seq_n_while_notifications_keep_arriving(cluster: Cluster) -> None:
    user = new_user()
    await send(cluster, user, 20)
    stream = asyncio.create_task(send(cluster, user, 60))
    await asyncio.sleep(0.05)
    tab = await Tab([cluster.ws_url(2)], token(user), last_seq=10).start()
    try:
        await stream
        await tab.wait_seq(80)
        await asyncio.sleep(0.2)
        assert tab.arrivals == list(range(11, 81))
    finally:
        await tab.stop()


async def wait_delivered(database_url: str, user: str, count: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(5):
            query = (
                "SELECT count(*) FROM tocsin_notifications"
                " WHERE user_id = $1 AND delivered_at IS NOT NULL"
            )
            # Polling is right here: the write happens in another process.
            while await conn.fetchval(query, user) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_acked_notifications_are_not_resent_to_a_new_client(
    cluster: Cluster, database_url: str
) -> None:
    user = new_user()
    await send(cluster, user, 3)
    first = await Tab([cluster.ws_url(0)], token(user)).start()
    await first.wait(lambda: first.acked == 3)
    await first.stop()
    await wait_delivered(database_url, user, 3)  # acks are written in batches
    await send(cluster, user, 2)
    second = await Tab([cluster.ws_url(1)], token(user)).start()
    try:
        assert second.arrivals == [4, 5]
    finally:
        await second.stop()


async def test_unacked_notifications_are_sent_again_on_next_connect(cluster: Cluster) -> None:
    user = new_user()
    await send(cluster, user, 2)
    silent = await Tab([cluster.ws_url(0)], token(user), ack=False).start()
    assert silent.arrivals == [1, 2]
    await silent.stop()
    again = await Tab([cluster.ws_url(2)], token(user)).start()
    try:
        assert again.arrivals == [1, 2]
    finally:
        await again.stop()


async def test_read_in_one_tab_updates_the_count_in_tabs_on_other_nodes(cluster: Cluster) -> None:
    user = new_user()
    tabs = [await Tab([cluster.ws_url(i)], token(user)).start() for i in (0, 2)]
    try:
        await send(cluster, user, 3)
        for tab in tabs:
            await tab.wait_seq(3)
        await tabs[0].send({"type": "read", "id": tabs[0].notifications[2]["id"]})
        await tabs[1].wait(lambda: any(e["type"] == "notification:read" for e in tabs[1].events))
        read = next(e for e in tabs[1].events if e["type"] == "notification:read")
        assert read["unreadCount"] == 2
        assert read["ids"] == [tabs[0].notifications[2]["id"]]

        rest = f"{cluster.gateways[1].url}/v1/notifications/read-all"
        auth = {"Authorization": f"Bearer {token(user)}"}
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.post(rest, headers=auth)
        assert answer.status_code == 200 and answer.json()["unreadCount"] == 0
        for tab in tabs:
            await tab.wait(
                lambda t=tab: any(  # type: ignore[misc]
                    e["type"] == "notifications:read-all" and e["unreadCount"] == 0
                    for e in t.events
                )
            )
    finally:
        await asyncio.gather(*(tab.stop() for tab in tabs))


async def test_commands_that_arrive_with_the_close_are_still_carried_out(
    cluster: Cluster,
) -> None:
    """A tab marks a notification read and navigates away (a web push click does): the read
    and the close frame reach the gateway in one segment, and the read still commits."""
    user = new_user()
    await send(cluster, user, 3)
    async with websockets.connect(cluster.ws_url(0), subprotocols=["tocsin.v1"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token(user)}))
        ids: list[str] = []
        while len(ids) < 3:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "notifications:batch":
                ids += [n["id"] for n in frame["notifications"]]
        ws.protocol.send_text(json.dumps({"type": "read", "id": ids[0]}).encode())
        ws.protocol.send_text(json.dumps({"type": "ping", "t": 1}).encode())
        ws.protocol.send_text(json.dumps({"type": "seen-all"}).encode())
        ws.protocol.send_close(1001, "navigating away")
        ws.transport.write(b"".join(ws.protocol.data_to_send()))  # one write: one segment
        await asyncio.wait_for(ws.wait_closed(), 10)

    auth = {"Authorization": f"Bearer {token(user)}"}
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(50):
            counts = (
                await http.get(
                    f"{cluster.gateways[1].url}/v1/notifications/unread-count", headers=auth
                )
            ).json()
            if counts["unreadCount"] == 2 and counts["unseenCount"] == 0:
                break
            await asyncio.sleep(0.1)
    assert (counts["unreadCount"], counts["unseenCount"]) == (2, 0)
