"""Token and Origin attacks, and user isolation over the socket and REST."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import warnings
from typing import Any

import httpx
import jwt
import jwt.warnings
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.conftest import JWT_SECRET
from tests.gateway.cluster import ALLOWED_ORIGIN, Cluster, new_user, token
from tests.support.tabs import Tab


def claims(user: str, **over: Any) -> dict[str, Any]:
    return {"sub": user, "aud": "tocsin", "iss": "tocsin", "exp": int(time.time()) + 600, **over}


def unsigned(payload: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def hs512(payload: dict[str, Any]) -> str:
    """Algorithm confusion: right secret, algorithm the server was not configured for."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(payload, JWT_SECRET, algorithm="HS512")


def bad_tokens() -> dict[str, tuple[str, int]]:
    user = "victim"
    return {
        "bad signature": (jwt.encode(claims(user), "x" * 40, algorithm="HS256"), 4001),
        "alg none": (unsigned(claims(user)), 4001),
        "HS512 with the right secret": (hs512(claims(user)), 4001),
        "expired": (jwt.encode(claims(user, exp=int(time.time()) - 60), JWT_SECRET), 4003),
        "wrong audience": (jwt.encode(claims(user, aud="other"), JWT_SECRET), 4001),
        "wrong issuer": (jwt.encode(claims(user, iss="evil"), JWT_SECRET), 4001),
        "no subject": (jwt.encode({**claims(user), "sub": ""}, JWT_SECRET), 4001),
        "garbage": ("not.a.jwt", 4001),
    }


async def hello_close(url: str, token_value: object) -> tuple[int | None, str]:
    async with websockets.connect(url, subprotocols=["tocsin.v1"], open_timeout=5) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token_value}))
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        return ws.close_code, ws.close_reason or ""


@pytest.mark.parametrize("case", list(bad_tokens()))
async def test_bad_tokens_are_refused_with_their_close_code(cluster: Cluster, case: str) -> None:
    value, expected = bad_tokens()[case]
    code, reason = await hello_close(cluster.ws_url(0), value)
    assert code == expected, reason
    assert reason


async def test_first_frame_must_be_hello(cluster: Cluster) -> None:
    async with websockets.connect(cluster.ws_url(0), open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "ack", "seq": 1}))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1008


async def test_non_json_frame_closes_with_1003(cluster: Cluster) -> None:
    async with websockets.connect(cluster.ws_url(0), open_timeout=5) as ws:
        await ws.send("hello?")
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1003


async def test_disallowed_origin_is_refused_at_the_handshake(cluster: Cluster) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(cluster.ws_url(0), origin="http://evil.example", open_timeout=5)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    user = new_user()
    tab = await Tab([cluster.ws_url(0)], token(user), origin=ALLOWED_ORIGIN).start()
    await tab.stop()
    assert tab.welcomes[0]["userId"] == user


async def test_users_never_see_or_touch_each_others_notifications(cluster: Cluster) -> None:
    alice, bob = new_user(), new_user()
    alice_tab = await Tab([cluster.ws_url(0)], token(alice), ack=False).start()
    bob_tab = await Tab([cluster.ws_url(0)], token(bob), ack=False).start()
    try:
        async with cluster.client() as client:
            for i in range(3):
                await client.send(bob, "task:assigned", f"b{i}", "")
        await bob_tab.wait_seq(3)
        bob_id = bob_tab.notifications[1]["id"]

        # Alice's socket: she receives nothing of Bob's and cannot read or ack his.
        await alice_tab.send({"type": "read", "id": bob_id, "ref": "r"})
        await alice_tab.send({"type": "ack", "seq": 3})
        await alice_tab.wait(lambda: any(e.get("ref") == "r" for e in alice_tab.events))
        error = next(e for e in alice_tab.events if e.get("ref") == "r")
        assert error["code"] == "not_found"
        assert alice_tab.notifications == {}

        base = cluster.gateways[1].url
        alice_auth = {"Authorization": f"Bearer {token(alice)}"}
        bob_auth = {"Authorization": f"Bearer {token(bob)}"}
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            for action in ("read", "unread", "archive"):
                answer = await http.post(f"/v1/notifications/{bob_id}/{action}", headers=alice_auth)
                assert answer.status_code == 404
                assert answer.json()["error"]["code"] == "not_found"
            assert (await http.get("/v1/notifications", headers=alice_auth)).json()[
                "notifications"
            ] == []
            assert (await http.post("/v1/notifications/read-all", headers=alice_auth)).json()[
                "updated"
            ] == 0
            feed = (await http.get("/v1/notifications", headers=bob_auth)).json()
            assert feed["unreadCount"] == 3
            assert all(n["readAt"] is None for n in feed["notifications"])
            assert (await http.get("/v1/notifications")).status_code == 401
            bad = {"Authorization": "Bearer " + unsigned(claims(bob))}
            assert (await http.get("/v1/notifications", headers=bad)).status_code == 401
        # Bob's rows are still undelivered: Alice's ack touched only Alice.
        again = await Tab([cluster.ws_url(2)], token(bob)).start()
        await again.stop()
        assert again.arrivals == [1, 2, 3]
    finally:
        await asyncio.gather(alice_tab.stop(), bob_tab.stop())


async def test_expired_token_closes_a_live_socket_unless_refreshed(cluster: Cluster) -> None:
    user = new_user()
    short = Tab([cluster.ws_url(0)], token(user, ttl=1), reconnect=False)
    await short.start()
    # exp (1 s) + the cluster's leeway (1 s) bounds the wait.
    await short.wait(lambda: bool(short.close_codes), within=10)
    assert short.close_codes == [4003]

    fresh = Tab([cluster.ws_url(0)], token(user, ttl=1), reconnect=False)
    await fresh.start()
    await fresh.send({"type": "token", "token": token(user, ttl=600)})
    await fresh.wait(lambda: any(e["type"] == "token-accepted" for e in fresh.events))
    await fresh.send({"type": "token", "token": token(new_user()), "ref": "t"})
    await fresh.wait(lambda: any(e.get("ref") == "t" for e in fresh.events))
    assert next(e for e in fresh.events if e.get("ref") == "t")["code"] == "bad_frame"
    await fresh.stop()
