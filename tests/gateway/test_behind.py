"""Knowing you are behind: `pong` carries the user's newest seq, so a socket that missed a live
frame finds out at its next ping, and the gateway sends it what it lacks. Real PostgreSQL,
Redis and a gateway process; no dispatcher, so nothing is ever published live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from shared.models import NewNotification
from shared.repository import Repository
from tests.gateway.cluster import Cluster, new_user, server_env, token
from tests.support.processes import ServerProcess


@pytest.fixture(scope="module")
def gateway(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = server_env(database_url, redis_url)
    server = Cluster(env, tmp_path_factory.mktemp("behind")).start_gateway(0)
    yield server
    server.terminate()


async def receive(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return frame


async def until(ws: ClientConnection, kind: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """The next frame of type `kind`; every frame before it is appended to `seen`."""
    while (frame := await receive(ws))["type"] != kind:
        seen.append(frame)
    return frame


def seqs(frames: list[dict[str, Any]]) -> set[int]:
    held = set()
    for frame in frames:
        if frame["type"] == "notification:new":
            held.add(frame["seq"])
        elif frame["type"] == "notifications:batch":
            held.update(n["seq"] for n in frame["notifications"])
    return held


@pytest.fixture
async def socket(gateway: ServerProcess) -> AsyncIterator[tuple[str, ClientConnection]]:
    user = new_user()
    url = f"ws://127.0.0.1:{gateway.port}/v1/ws"
    async with websockets.connect(url, subprotocols=["tocsin.v1"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token(user), "lastSeq": None}))
        assert (await receive(ws))["type"] == "welcome"
        assert (await until(ws, "notifications:batch", []))["more"] is False
        yield user, ws


async def ping(ws: ClientConnection, seen: list[dict[str, Any]]) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "ping", "t": 7}))
    return await until(ws, "pong", seen)


async def test_pong_tells_a_socket_that_missed_a_frame_and_the_gateway_fills_it(
    socket: tuple[str, ClientConnection], repo: Repository
) -> None:
    user, ws = socket
    seen: list[dict[str, Any]] = []
    assert (await ping(ws, seen))["latestSeq"] == 0
    # Committed, never published: the live frame this socket should have had is lost.
    await repo.insert(NewNotification(type="system:alert", title="lost", body=""), [user])
    pong = await ping(ws, seen)
    assert pong == {"type": "pong", "t": 7, "latestSeq": 1}
    assert seqs(seen) == set()  # behind: newest is 1, this socket holds nothing
    async with asyncio.timeout(5):
        while 1 not in seqs(seen):
            seen.append(await receive(ws))
    assert (await ping(ws, seen))["latestSeq"] == 1  # caught up


async def test_pong_of_an_up_to_date_socket_matches_what_it_holds(
    socket: tuple[str, ClientConnection], repo: Repository
) -> None:
    user, ws = socket
    seen: list[dict[str, Any]] = []
    for i in range(3):
        await repo.insert(NewNotification(type="system:alert", title=f"n{i}", body=""), [user])
        await ping(ws, seen)  # each ping fills what the socket lacks
    async with asyncio.timeout(5):
        while seqs(seen) != {1, 2, 3}:
            seen.append(await receive(ws))
    pong = await ping(ws, seen)
    assert pong["latestSeq"] == max(seqs(seen)) == 3
