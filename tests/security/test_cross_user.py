"""Alice's token against Bob's notifications over every socket frame and every REST route:
404 / not_found as for an unknown id, no state event reaches either side, and Bob's rows are
exactly as before (unread, unseen, undelivered). test_security.py covers `read` and `ack`
over the socket and read/unread/archive, the feed and read-all over REST by plain id; here
are the other frames, the token swap, id spellings and the bodies that name Bob's seqs."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from tests.gateway.cluster import Cluster, new_user, token
from tests.support.tabs import Tab

BOB_SENDS = 3


async def bob_rows(database_url: str, bob: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT seq, delivered_at, seen_at, read_at, archived_at FROM tocsin_notifications"
            " WHERE user_id = $1 ORDER BY seq",
            bob,
        )
    finally:
        await conn.close()
    return [tuple(row) for row in rows]


def spellings(ident: str) -> list[str]:
    return [ident, ident.upper(), ident.replace("-", ""), f"{{{ident}}}", f"urn:uuid:{ident}"]


async def attack_over_the_socket(alice: Tab, bob: str, bob_ids: list[str]) -> None:
    frames: list[dict[str, Any]] = [
        {"type": "ack", "seq": BOB_SENDS},
        {"type": "read-all", "upToSeq": BOB_SENDS},
        {"type": "read-all"},
        {"type": "seen-all", "upToSeq": BOB_SENDS},
        {"type": "seen-all"},
        {"type": "sync-count"},
        {"type": "token", "token": token(bob), "ref": "swap"},
    ]
    frames += [
        {"type": "read", "id": i, "ref": f"r{n}"} for n, i in enumerate(spellings(bob_ids[0]))
    ]
    for frame in frames:
        await alice.send(frame)
        await asyncio.sleep(0.06)  # under the frame rate limit
    await alice.wait(lambda: any(e.get("ref") == "swap" for e in alice.events))
    swap = next(e for e in alice.events if e.get("ref") == "swap")
    assert swap["type"] == "error" and swap["code"] == "bad_frame"

    def reads() -> list[dict[str, Any]]:
        return [e for e in alice.events if str(e.get("ref", "")).startswith("r")]

    await alice.wait(lambda: len(reads()) == len(spellings(bob_ids[0])))
    assert all(e["type"] == "error" and e["code"] in ("not_found", "bad_frame") for e in reads())
    count = next(e for e in alice.events if e["type"] == "unread-count")
    assert count["unreadCount"] == 0 and count["unseenCount"] == 0


async def attack_over_rest(base: str, alice: str, bob_ids: list[str]) -> None:
    auth = {"Authorization": f"Bearer {token(alice)}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=5) as http:
        for ident in bob_ids:
            for spelled in spellings(ident):
                for action in ("read", "unread", "archive"):
                    answer = await http.post(f"/v1/notifications/{spelled}/{action}")
                    assert answer.status_code in (404, 422), answer.text
                    assert answer.json()["error"]["code"] in ("not_found", "validation_error")
        for path in ("/v1/notifications/read-all", "/v1/notifications/seen-all"):
            for body in ({"upToSeq": BOB_SENDS}, {}):
                answer = await http.post(path, json=body)
                assert answer.status_code == 200 and answer.json()["updated"] == 0
        for params in ({}, {"unread": "true"}, {"cursor": "4"}, {"type": "task:assigned"}):
            feed = (await http.get("/v1/notifications", params=params)).json()
            assert feed["notifications"] == [] and feed["unreadCount"] == 0
        counts = (await http.get("/v1/notifications/unread-count")).json()
        assert counts == {"unreadCount": 0, "unseenCount": 0}


async def test_alice_cannot_touch_bob_by_any_frame_or_route(
    cluster: Cluster, database_url: str
) -> None:
    alice, bob = new_user(), new_user()
    bob_watch = await Tab([cluster.ws_url(1)], token(bob), ack=False).start()
    alice_tab = await Tab([cluster.ws_url(0)], token(alice)).start()
    try:
        async with cluster.client() as client:
            sent = [await client.send(bob, "task:assigned", f"b{i}") for i in range(BOB_SENDS)]
        bob_ids = [s.id for s in sent]
        await bob_watch.wait_seq(BOB_SENDS)
        before = await bob_rows(database_url, bob)

        await attack_over_the_socket(alice_tab, bob, bob_ids)
        await attack_over_rest(cluster.gateways[1].url, alice, bob_ids)
        async with cluster.client() as client:  # after the swap attempt: still Alice's socket
            await client.send(bob, "task:assigned", "after")
        await bob_watch.wait_seq(BOB_SENDS + 1)
        await asyncio.sleep(0.5)  # time for anything misrouted or flushed (acks) to land

        assert alice_tab.notifications == {}
        state = {"notification:read", "notifications:read-all", "notifications:seen"}
        state |= {"notification:unread", "notification:archived"}
        assert not [e for e in bob_watch.events if e["type"] in state]
        assert (await bob_rows(database_url, bob))[:BOB_SENDS] == before
        assert all(row[1:] == (None, None, None, None) for row in before)
    finally:
        await asyncio.gather(alice_tab.stop(), bob_watch.stop())
