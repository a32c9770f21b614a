"""WebSocket frames written straight to a socket's transport, bypassing ASGI per frame.

A server's text frame is unmasked, so its bytes are the same for every socket: a frame for a
user's tabs is encoded once per node and the same bytes go to each transport (issue 9).
Control frames (close, ping, pong) still go through uvicorn's protocol, which gateway/server.py
extends with the /v1/ws upgrade and these direct writes."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from typing import Any, Protocol

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked, uncompressed text frame (RFC 6455 5.2) holding `payload` (UTF-8)."""
    size = len(payload)
    if size < 126:
        return bytes((_FIN_TEXT, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", _FIN_TEXT, 126, size) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, size) + payload


class FrameReceiver(Protocol):
    """Takes a socket's client frames once the session has detached from its ASGI task."""

    def on_frame(self, text: str | None) -> None:
        """A client message: its text, or None for a binary one."""
        ...

    def on_disconnect(self) -> None:
        """The socket is closed or closing (by either side); called once."""
        ...


class DirectSocket(Protocol):
    """What a Connection needs of its socket (gateway/server.py implements it on uvicorn's
    WebSocket protocol; tests use a fake)."""

    writable: asyncio.Event  # cleared while the transport is paused (above its high-water mark)

    def write(self, frame: bytes) -> bool:
        """Queue an encoded frame on the transport; False once the socket is closing."""
        ...

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        ...

    def set_high_water(self, high: int) -> None: ...

    def close_now(self, code: int, reason: str) -> None:
        """Queue the close frame behind what is buffered and end the application's reads."""
        ...

    def detach(self, receiver: FrameReceiver) -> None:
        """From now on client frames go to `receiver` as they arrive, and the session's task
        may return without closing the socket: an idle socket then holds no task at all."""
        ...


class HandshakeSocket(DirectSocket, Protocol):
    """A DirectSocket before its session detaches: the hello is awaited as an ASGI message."""

    async def receive(self) -> Mapping[str, Any]:
        """`websocket.receive` (with `text` or `bytes`) or `websocket.disconnect`."""
        ...
