"""Browser REST API on a real gateway: feed pages and filters, counts, read state."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.gateway.cluster import Cluster, new_user, token


@pytest.fixture
async def user_with_feed(cluster: Cluster) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    user = new_user()
    async with cluster.client() as client:
        for i in range(25):
            kind = "task:assigned" if i % 5 == 0 else "message:received"
            await client.send(user, kind, f"n{i + 1}", "")
    headers = {"Authorization": f"Bearer {token(user)}"}
    async with httpx.AsyncClient(
        base_url=cluster.gateways[0].url, headers=headers, timeout=5
    ) as http:
        yield user, http


async def test_feed_pages_newest_first_with_cursor(
    user_with_feed: tuple[str, httpx.AsyncClient],
) -> None:
    _, http = user_with_feed
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "10", **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/notifications", params=params)).json()
        seen += [n["seq"] for n in page["notifications"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(range(25, 0, -1))
    assert page["unreadCount"] == 25 and page["unseenCount"] == 25


async def test_filters_and_read_state(user_with_feed: tuple[str, httpx.AsyncClient]) -> None:
    _, http = user_with_feed
    tasks = (await http.get("/v1/notifications", params={"type": "task:assigned"})).json()
    assert [n["seq"] for n in tasks["notifications"]] == [21, 16, 11, 6, 1]

    newest = (await http.get("/v1/notifications", params={"limit": "3"})).json()["notifications"]
    read = (await http.post(f"/v1/notifications/{newest[0]['id']}/read")).json()
    assert read["notification"]["readAt"] is not None and read["unreadCount"] == 24
    archived = (await http.post(f"/v1/notifications/{newest[1]['id']}/archive")).json()
    assert archived["unreadCount"] == 23
    unread_feed = (await http.get("/v1/notifications", params={"unread": "true"})).json()
    assert newest[0]["id"] not in [n["id"] for n in unread_feed["notifications"]]
    assert newest[1]["id"] not in [n["id"] for n in unread_feed["notifications"]]

    again = (await http.post(f"/v1/notifications/{newest[0]['id']}/unread")).json()
    assert again["notification"]["readAt"] is None and again["unreadCount"] == 24

    seen = (await http.post("/v1/notifications/seen-all")).json()
    assert seen["unseenCount"] == 0 and seen["unreadCount"] == 24
    partial = (await http.post("/v1/notifications/read-all", json={"upToSeq": 10})).json()
    assert partial["updated"] == 10 and partial["unreadCount"] == 14
    counts = (await http.get("/v1/notifications/unread-count")).json()
    assert counts == {"unreadCount": 14, "unseenCount": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "²"}, "cursor"),
        ({"cursor": str(2**63)}, "cursor"),
        ({"unread": "maybe"}, "unread"),
        ({"type": "NotAType"}, "type"),
    ],
)
async def test_bad_query_is_422_naming_the_field(
    user_with_feed: tuple[str, httpx.AsyncClient], params: dict[str, str], field: str
) -> None:
    _, http = user_with_feed
    answer = await http.get("/v1/notifications", params=params)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == field


async def test_bad_read_all_body_and_unknown_id(
    user_with_feed: tuple[str, httpx.AsyncClient],
) -> None:
    _, http = user_with_feed
    for bad in (-1, 2**63):
        answer = await http.post("/v1/notifications/read-all", json={"upToSeq": bad})
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "upToSeq"
    answer = await http.post("/v1/notifications/read-all", content=b"{nope")
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "body"
    for ident in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert (await http.post(f"/v1/notifications/{ident}/read")).status_code == 404
    assert (await http.get("/v1/notifications/unread-count")).json()["unreadCount"] == 25
