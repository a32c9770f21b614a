"""PostgreSQL stopped: both services start anyway, report not ready, answer 503 in the one
error shape (a socket closes 1013), and become ready by themselves when it returns.

The PostgreSQL here is this test's own (the embedded default's, in a scratch folder); the
machine's servers are never stopped."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

import tocsin_client
from shared.migrate import migrate_url
from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.edge.support import assert_error, json_lines
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port
from tocsin.embedded import EmbeddedServer, start_postgres

RECOVERY_TIMEOUT = 30.0  # seconds for /readyz to turn 200 once PostgreSQL is back
AUTH = {"Authorization": f"Bearer {PRODUCER_KEY}"}


async def stopped_postgres(folder: Path) -> str:
    """A migrated PostgreSQL of our own, stopped; its URL."""
    server = start_postgres(folder)
    try:
        await migrate_url(server.url)
    finally:
        server.stop()
    return server.url


def start_both(database_url: str, redis_url: str, log_dir: Path) -> list[ServerProcess]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
        "TOCSIN_LOG_FORMAT": "json",
    }
    gateway_port, dispatcher_port = free_port(), free_port()
    gateway_env = {**env, "TOCSIN_GATEWAY_PORT": str(gateway_port)}
    dispatcher_env = {**env, "TOCSIN_DISPATCHER_PORT": str(dispatcher_port)}
    gateway = spawn(["gateway"], gateway_env, gateway_port, log_dir)  # /healthz: it started
    try:
        return [gateway, spawn(["dispatcher"], dispatcher_env, dispatcher_port, log_dir)]
    except BaseException:
        gateway.terminate()
        raise


def assert_not_ready(response: httpx.Response, service: str) -> None:
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["service"] == service
    assert body["draining"] is False
    assert body["checks"]["postgres"].startswith("down: ")
    assert body["checks"]["redis"] == "ok"


async def hello(ws_url: str, token: str) -> dict[str, Any]:
    """Open a socket and say hello; the first frame back (raises ConnectionClosed if none)."""
    async with websockets.connect(ws_url, subprotocols=["tocsin.v1"], open_timeout=5) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert isinstance(frame, dict)
        return frame


async def wait_ready(http: httpx.AsyncClient, urls: list[str]) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    for url in urls:
        while (await http.get(url)).status_code != 200:
            assert time.monotonic() < deadline, f"{url} not ready {RECOVERY_TIMEOUT}s after"
            await asyncio.sleep(0.2)


async def while_down(gateway: ServerProcess, dispatcher: ServerProcess, token: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        assert_not_ready(await http.get(gateway.url + "/readyz"), "gateway")
        assert_not_ready(await http.get(dispatcher.url + "/readyz"), "dispatcher")
        feed = await http.get(
            gateway.url + "/v1/notifications", headers={"Authorization": f"Bearer {token}"}
        )
        assert_error(feed, 503, "unavailable")
        assert feed.headers["retry-after"] == "1"
        note = {"user_id": "u-down", "type": "system:alert", "title": "t"}
        sent = await http.post(dispatcher.url + "/v1/notifications", json=note, headers=AUTH)
        assert_error(sent, 503, "store_unavailable")
    with pytest.raises(ConnectionClosed) as closed:
        await hello(gateway.url.replace("http", "ws") + "/v1/ws", token)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    assert "postgres unavailable" in closed.value.rcvd.reason


async def test_services_start_with_postgres_stopped_and_recover(
    scratch: Path, redis_url: str, tmp_path: Path
) -> None:
    database_url = await stopped_postgres(scratch)
    user = f"u-{uuid.uuid4().hex[:12]}"
    token = tocsin_client.user_token(user, JWT_SECRET, ttl=600)
    gateway, dispatcher = start_both(database_url, redis_url, tmp_path)
    postgres: EmbeddedServer | None = None
    try:
        await while_down(gateway, dispatcher, token)
        postgres = start_postgres(scratch)
        async with httpx.AsyncClient(timeout=10) as http:
            await wait_ready(http, [gateway.url + "/readyz", dispatcher.url + "/readyz"])
            feed = await http.get(
                gateway.url + "/v1/notifications", headers={"Authorization": f"Bearer {token}"}
            )
            assert feed.status_code == 200, feed.text
            sent = await http.post(
                dispatcher.url + "/v1/notifications",
                json={"user_id": user, "type": "system:alert", "title": "back"},
                headers=AUTH,
            )
            assert sent.status_code == 201, sent.text
        welcome = await hello(gateway.url.replace("http", "ws") + "/v1/ws", token)
        assert welcome["type"] == "welcome" and welcome["lastSeq"] == 1
    finally:
        gateway.terminate()
        dispatcher.terminate()
        if postgres is not None:
            postgres.stop()
    refused = [
        line
        for line in json_lines(gateway.log())
        if line["message"].startswith("postgres unavailable for a socket")
    ]
    assert refused and all(line.get("connection_id") for line in refused)
