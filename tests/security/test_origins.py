"""Origins that only look like the allowed one (http://app.example): refused at the socket's
handshake with 403 and refused by CORS; the allowed Origin itself still works."""

from __future__ import annotations

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.gateway.cluster import ALLOWED_ORIGIN, Cluster

LOOK_ALIKES = [
    "http://app.example.evil.com",
    "http://evil.com/app.example",
    "http://evil.com?app.example",
    "http://app.example@evil.com",
    "http://evilapp.example",
    "http://app.exampl",
    "null",
    "HTTP://APP.EXAMPLE",
    "http://App.Example",
    "http://app.example.",
    "http://app.example:8080",
    "http://app.example:80",
    "https://app.example",
    "ws://app.example",
    "http://app.example/",
    "http://app.example, http://evil.com",
    "",
]


@pytest.mark.parametrize("origin", LOOK_ALIKES)
async def test_look_alike_origins_get_403_at_the_handshake(cluster: Cluster, origin: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(
            cluster.ws_url(0),
            subprotocols=["tocsin.v1"],  # type: ignore[list-item]
            additional_headers={"Origin": origin},
            open_timeout=5,
        )
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("origin", LOOK_ALIKES)
async def test_look_alike_origins_are_not_granted_cors(cluster: Cluster, origin: str) -> None:
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    async with httpx.AsyncClient(base_url=cluster.gateways[1].url, timeout=5) as http:
        answer = await http.options("/v1/notifications/read-all", headers=preflight)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "cors_refused"
        simple = await http.get("/v1/notifications", headers={"Origin": origin})
    for response in (answer, simple):
        assert "access-control-allow-origin" not in response.headers


async def test_the_allowed_origin_itself_is_granted(cluster: Cluster) -> None:
    preflight = {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"}
    async with httpx.AsyncClient(base_url=cluster.gateways[1].url, timeout=5) as http:
        answer = await http.options("/v1/notifications/read-all", headers=preflight)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    async with websockets.connect(
        cluster.ws_url(0), additional_headers={"Origin": ALLOWED_ORIGIN}, open_timeout=5
    ) as ws:
        assert ws.response is not None and ws.response.status_code == 101
