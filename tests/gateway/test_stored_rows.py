"""Rows already in the store that no frame could carry (written before today's limits, or by
hand): the feed, the backlog and live delivery still serve the user, with `data` emptied."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from tests.gateway.cluster import Cluster, new_user, token
from tests.support.tabs import Tab

DEEP = "[" * 251 + "]" * 251  # accepted before depth was limited; broke every frame holding it
HUGE_NUMBER = '{"n": 1e400}'  # jsonb keeps it exactly; orjson cannot decode it as a float


async def _store_bad_rows(database_url: str, user: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE tocsin_notifications SET data = jsonb_build_object('deep', $2::text::jsonb)"
            " WHERE user_id = $1 AND seq = 2",
            user,
            DEEP,
        )
        await conn.execute(
            "UPDATE tocsin_notifications SET data = $2::text::jsonb WHERE user_id = $1 AND seq = 3",
            user,
            HUGE_NUMBER,
        )
    finally:
        await conn.close()


async def test_bad_rows_are_delivered_with_empty_data_everywhere(
    cluster: Cluster, database_url: str
) -> None:
    user = new_user()
    async with cluster.client() as client:
        for i in range(4):
            await client.send(user, "message:received", f"m{i + 1}", data={"i": i + 1})
    await _store_bad_rows(database_url, user)

    headers = {"Authorization": f"Bearer {token(user)}"}
    async with httpx.AsyncClient(base_url=cluster.gateways[0].url, headers=headers) as http:
        feed = await http.get("/v1/notifications")
    assert feed.status_code == 200, feed.text
    data = {n["seq"]: n["data"] for n in feed.json()["notifications"]}
    assert data == {4: {"i": 4}, 3: {}, 2: {}, 1: {"i": 1}}

    tab = await Tab([cluster.ws_url(1)], token(user), last_seq=0).start()
    try:
        await tab.wait_seq(4)
        assert tab.arrivals == [1, 2, 3, 4]
        assert tab.notifications[2]["data"] == {} and tab.notifications[4]["data"] == {"i": 4}
        async with cluster.client() as client:
            await client.send(user, "message:received", "m5")
        await tab.wait_seq(5)
        await asyncio.sleep(0.2)
        assert tab.connections == 1 and tab.close_codes == []
    finally:
        await tab.stop()
    log = "".join(gateway.log() for gateway in cluster.gateways)
    assert "data must be nested at most 32 levels deep; delivered with data {}" in log
