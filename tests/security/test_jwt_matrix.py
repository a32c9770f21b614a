"""Every bad token, over REST and over the socket, on real gateways: a 401 in the JSON error
shape with a reason, or a 4001 close with a reason; never a 500, a 1011 or a dropped socket.

tests/gateway/test_security.py already sends the signature, algorithm, audience, issuer,
expiry and empty-subject cases over the socket; here they go over REST, and every other case
over both."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.gateway.cluster import Cluster, new_user, token
from tests.security.tokens import bad_tokens, expired

COVERED_ON_SOCKET = {
    "alg none",
    "HS512 when HS256 is configured",
    "wrong secret",
    "wrong audience",
    "wrong issuer",
    "sub empty",
}
REST_ROUTES = [
    ("GET", "/v1/notifications"),
    ("GET", "/v1/notifications/unread-count"),
    ("POST", "/v1/notifications/read-all"),
    ("POST", "/v1/notifications/seen-all"),
    ("POST", "/v1/notifications/00000000-0000-4000-8000-000000000000/read"),
]


def assert_unauthorized(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert error["code"] == "unauthorized"
    assert isinstance(error["message"], str) and error["message"].strip()


async def hello_close(url: str, value: str) -> tuple[int | None, str]:
    """Say hello with `value`; the close code and reason (no frame may come first)."""
    async with websockets.connect(url, subprotocols=["tocsin.v1"], open_timeout=5) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": value, "lastSeq": 0}))
        async with asyncio.timeout(5):
            with pytest.raises(websockets.ConnectionClosed):
                frame = await ws.recv()
                raise AssertionError(f"a refused token got a frame: {frame!r}")
    return ws.close_code, ws.close_reason or ""


@pytest.mark.parametrize("case", [*bad_tokens(), "expired"])
async def test_rest_refuses_every_bad_token_with_401_and_a_reason(
    cluster: Cluster, case: str
) -> None:
    value = expired() if case == "expired" else bad_tokens()[case]
    headers = {"Authorization": f"Bearer {value}"}
    async with httpx.AsyncClient(base_url=cluster.gateways[0].url, timeout=5) as http:
        for method, path in REST_ROUTES:
            assert_unauthorized(await http.request(method, path, headers=headers))


@pytest.mark.parametrize("case", [c for c in bad_tokens() if c not in COVERED_ON_SOCKET])
async def test_socket_refuses_every_bad_token_with_4001_and_a_reason(
    cluster: Cluster, case: str
) -> None:
    code, reason = await hello_close(cluster.ws_url(1), bad_tokens()[case])
    assert code == 4001, reason
    assert reason.startswith("unauthorized")


async def test_a_bad_token_frame_on_a_live_socket_changes_nothing(cluster: Cluster) -> None:
    """A `token` frame with any bad token is refused and the socket keeps its user."""
    user = new_user()
    async with websockets.connect(cluster.ws_url(0), subprotocols=["tocsin.v1"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token(user, ttl=600)}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "welcome"
        cases = {**bad_tokens(), "expired": expired(), "not a string": 42}
        for i, (case, value) in enumerate(cases.items()):
            await ws.send(json.dumps({"type": "token", "token": value, "ref": f"t{i}"}))
            frame = await _next_not_batch(ws)
            assert frame["type"] == "error" and frame["ref"] == f"t{i}", (case, frame)
            await asyncio.sleep(0.06)  # under the socket's frame rate limit
        await ws.send(json.dumps({"type": "sync-count"}))
        assert (await _next_not_batch(ws))["type"] == "unread-count"


async def _next_not_batch(ws: websockets.ClientConnection) -> dict[str, object]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert isinstance(frame, dict)
        if frame["type"] != "notifications:batch":
            return frame
