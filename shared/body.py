"""Reads a request body without ever holding more than the configured limit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from starlette.types import Receive


class Incoming(Protocol):
    """What reading a body needs of a request: a Starlette Request, or the dispatcher's
    own send route (dispatcher/fastpath.py)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def receive(self) -> Receive: ...


class BodyTooLarge(Exception):
    """The body is (or declares itself) larger than the limit."""


class BadBody(Exception):
    """The body framing is unusable (bad Content-Length, client went away)."""


async def read_body(request: Incoming, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadBody("Content-Length must be a number")
        if int(declared) > limit:
            raise BodyTooLarge(f"declared {declared} bytes")
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:  # the ASGI messages themselves, as Starlette's Request.stream() reads them
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadBody("the client went away mid-body")
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"more than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
