"""The `/v1/ws` upgrade answered from the headers uvicorn's httptools parser already read.

uvicorn hands an upgrade to its WebSocket protocol by writing the request out again for
websockets to parse in Python and answer through its `Request`/`Response` objects: about a
fifth of a connect's CPU with the ASGI app (issue 9). An ordinary upgrade (GET, one valid
Sec-WebSocket-Key, version 13, at most one Origin) is answered here instead; anything else
goes uvicorn's way: websockets' checks answer a broken one (400), and what passes them
reaches the app, which has no WebSocket route and refuses it (403)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from websockets.utils import accept_key

WS_PATH = b"/v1/ws"


@dataclass(frozen=True, slots=True)
class Upgrade:
    accept: str  # the Sec-WebSocket-Accept value
    origin: str | None
    offered: tuple[str, ...]  # Sec-WebSocket-Protocol tokens

    def response(self, subprotocol: str | None, extra: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The 101 answer; `extra` are uvicorn's default headers (date, server)."""
        lines = [
            b"HTTP/1.1 101 Switching Protocols",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Accept: " + self.accept.encode(),
            *(name + b": " + value for name, value in extra),
        ]
        if subprotocol is not None:
            lines.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode())
        return b"\r\n".join(lines) + b"\r\n\r\n"


def from_headers(headers: Iterable[tuple[bytes, bytes]]) -> Upgrade | None:
    """The upgrade in httptools' lower-cased headers, or None when websockets should judge it.
    (uvicorn has already checked `Connection: upgrade` and `Upgrade: websocket`.)"""
    key = version = origin = None
    offered: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-key":
            if key is not None:
                return None
            key = value
        elif name == b"sec-websocket-version":
            if version is not None:
                return None
            version = value
        elif name == b"origin":
            if origin is not None:
                return None
            origin = value.decode("latin-1")
        elif name == b"sec-websocket-protocol":
            offered += (token.strip() for token in value.decode("latin-1").split(","))
    if key is None or version != b"13":
        return None
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    return Upgrade(accept_key(key.decode("ascii")), origin, tuple(offered))
