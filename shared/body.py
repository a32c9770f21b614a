"""Reads a request body without ever holding more than the configured limit."""

from __future__ import annotations

from contextlib import aclosing

from starlette.requests import ClientDisconnect, Request


class BodyTooLarge(Exception):
    """The body is (or declares itself) larger than the limit."""


class BadBody(Exception):
    """The body framing is unusable (bad Content-Length, client went away)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadBody("Content-Length must be a number")
        if int(declared) > limit:
            raise BodyTooLarge(f"declared {declared} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with aclosing(request.stream()) as stream:
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"more than {limit} bytes")
                chunks.append(chunk)
    except ClientDisconnect:
        raise BadBody("the client went away mid-body") from None
    return b"".join(chunks)
