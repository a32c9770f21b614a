"""The /v1/ws upgrade: ordinary ones answered from httptools' headers (gateway/upgrade.py),
anything else by websockets' full checks, each as RFC 6455 and the protocol docs say."""

from __future__ import annotations

import asyncio

import pytest

from gateway.upgrade import Upgrade, from_headers
from tests.gateway.cluster import Cluster

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 1.3's example key, and its accept value:
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
ORDINARY = [(b"sec-websocket-key", KEY), (b"sec-websocket-version", b"13")]


def test_an_ordinary_upgrade_is_read_from_the_headers() -> None:
    headers = [
        *ORDINARY,
        (b"origin", b"https://app.example"),
        (b"sec-websocket-protocol", b"chat, tocsin.v1"),
        (b"sec-websocket-protocol", b"other"),
    ]
    assert from_headers(headers) == Upgrade(
        ACCEPT, "https://app.example", ("chat", "tocsin.v1", "other")
    )
    assert from_headers(ORDINARY) == Upgrade(ACCEPT, None, ())


@pytest.mark.parametrize(
    "headers",
    [
        [(b"sec-websocket-version", b"13")],  # no key
        [(b"sec-websocket-key", KEY)],  # no version
        [(b"sec-websocket-key", KEY), (b"sec-websocket-version", b"8")],
        [*ORDINARY, (b"sec-websocket-key", KEY)],
        [*ORDINARY, (b"sec-websocket-version", b"13")],
        [(b"sec-websocket-key", b"not base64!"), (b"sec-websocket-version", b"13")],
        [(b"sec-websocket-key", b"c2hvcnQ="), (b"sec-websocket-version", b"13")],  # 5 bytes
        [*ORDINARY, (b"origin", b"https://a.example"), (b"origin", b"https://b.example")],
    ],
)
def test_anything_else_is_left_to_websockets(headers: list[tuple[bytes, bytes]]) -> None:
    assert from_headers(headers) is None


def test_the_answer_carries_the_accept_key_the_headers_and_the_subprotocol() -> None:
    upgrade = Upgrade(ACCEPT, None, ("tocsin.v1",))
    answer = upgrade.response("tocsin.v1", [(b"server", b"uvicorn")])
    assert answer == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\nserver: uvicorn\r\n"
        b"Sec-WebSocket-Protocol: tocsin.v1\r\n\r\n"
    )
    assert b"Sec-WebSocket-Protocol" not in upgrade.response(None, [])


async def handshake(cluster: Cluster, path: str, *headers: str) -> bytes:
    """The gateway's raw answer to an upgrade request (up to the end of its headers)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", cluster.gateways[0].port)
    request = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: Upgrade"]
    request += ["Upgrade: websocket", *headers]
    writer.write(("\r\n".join(request) + "\r\n\r\n").encode())
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()


async def test_a_real_upgrade_gets_101_with_the_subprotocol(cluster: Cluster) -> None:
    answer = await handshake(
        cluster,
        "/v1/ws?client=web",
        f"Sec-WebSocket-Key: {KEY.decode()}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: chat, tocsin.v1",
    )
    lines = answer.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    assert f"Sec-WebSocket-Accept: {ACCEPT}" in lines
    assert "Sec-WebSocket-Protocol: tocsin.v1" in lines
    assert any(line.lower().startswith("date: ") for line in lines)


@pytest.mark.parametrize(
    ("version", "key", "status", "says"),
    [
        ("12", KEY.decode(), 400, b"Sec-WebSocket-Version"),
        ("13", "bad", 400, b"Sec-WebSocket-Key"),
    ],
)
async def test_a_broken_upgrade_gets_websockets_answer(
    cluster: Cluster, version: str, key: str, status: int, says: bytes
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", cluster.gateways[0].port)
    request = (
        "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    )
    writer.write(request.encode())
    answer = await asyncio.wait_for(reader.read(), 10)  # the server closes after it
    writer.close()
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert says in answer


async def test_an_upgrade_to_another_path_is_refused(cluster: Cluster) -> None:
    answer = await handshake(
        cluster, "/v1/other", f"Sec-WebSocket-Key: {KEY.decode()}", "Sec-WebSocket-Version: 13"
    )
    assert answer.startswith(b"HTTP/1.1 403 ")
