"""The one HTTP edge of both services: JSON responses (orjson), the error shape for every
4xx/5xx, "store unavailable" mapped once to 503, request ids, and the readiness body."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import logs, serialization
from shared.repository import STORE_ERRORS

logger = logging.getLogger("tocsin.http")

# A backend (PostgreSQL or Redis) could not be reached: 503, never 500.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    *STORE_ERRORS,
    RedisConnectionError,
    RedisTimeoutError,
)
RETRY_AFTER = "1"  # seconds; a backend outage is either brief or paged
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_MAX = 64
_REQUEST_ID_BAD = re.compile(r"[^A-Za-z0-9._:/+=-]")
WS_TRY_AGAIN_LATER = 1013
PROBE_TIMEOUT = 2.0  # seconds per readiness check


class JSONResponse(_StarletteJSON):
    def render(self, content: Any) -> bytes:
        return serialization.dumps(content)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    fields: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """`{"error": {"code", "message", "field"? , "fields"?}}` with the given HTTP status."""
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    if fields is not None:
        detail["fields"] = list(fields)
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


# -- exception handlers (both apps) ------------------------------------------------------------


async def http_error(conn: HTTPConnection, exc: Exception) -> Response:
    """Starlette's own 404 (unknown route, static miss), 405 and any HTTPException."""
    assert isinstance(exc, HTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, exc.detail, headers=exc.headers)


def _backend(exc: BaseException) -> str:
    return "redis" if isinstance(exc, RedisConnectionError | RedisTimeoutError) else "postgres"


def unavailable_reason(exc: BaseException) -> str:
    """The close reason (with code 1013) for a socket whose backend is unreachable."""
    logger.warning("%s unavailable for a socket: %r", _backend(exc), exc)
    return f"{_backend(exc)} unavailable; retry later"


async def unavailable(conn: HTTPConnection, exc: Exception) -> Response:
    """PostgreSQL or Redis unreachable: 503 `unavailable` (a socket closes with 1013 and
    unavailable_reason(): gateway/session.py)."""
    backend = _backend(exc)
    logger.warning("%s unavailable during %s: %r", backend, conn.url.path, exc)
    return error_response(
        503,
        "unavailable",
        f"{backend} is unavailable; retry later",
        headers={"Retry-After": RETRY_AFTER},
    )


async def internal_error(conn: HTTPConnection, exc: Exception) -> Response:
    # Starlette re-raises after this answer; uvicorn logs the traceback with the request id.
    return error_response(500, "internal_error", "unexpected server error", headers=_echo_id())


def exception_handlers() -> dict[Any, Any]:
    """Starlette `exception_handlers` for both services."""
    handlers: dict[Any, Any] = {HTTPException: http_error, Exception: internal_error}
    handlers.update(dict.fromkeys(UNAVAILABLE_ERRORS, unavailable))
    return handlers


# -- request ids -----------------------------------------------------------------------------


def request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID made safe for logs (charset, length), or a new one."""
    if incoming:
        cleaned = _REQUEST_ID_BAD.sub("", incoming)[:REQUEST_ID_MAX]
        if cleaned:
            return cleaned
    return uuid.uuid4().hex


def _echo_id() -> dict[str, str]:
    current = logs.REQUEST_ID.get()
    return {REQUEST_ID_HEADER: current} if current else {}


def start_request(scope: Scope) -> str:
    """This HTTP request's id, set for its log lines: its X-Request-ID made safe, or a new one."""
    incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode())
    ident = request_id(incoming.decode("latin-1") if incoming else None)
    # Not reset afterwards: uvicorn runs each request in its own task (so the value dies
    # with it), and its own line for a crash is written after the app returns.
    logs.REQUEST_ID.set(ident)
    return ident


def with_request_id(
    headers: Sequence[tuple[bytes, bytes]], ident: str
) -> list[tuple[bytes, bytes]]:
    """Response headers with X-Request-ID set to `ident` (last, replacing any)."""
    kept = [h for h in headers if h[0] != b"x-request-id"]
    return [*kept, (b"x-request-id", ident.encode())]


class RequestIdMiddleware:
    """Sets the request id for this request's log lines and returns it as X-Request-ID."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ident = start_request(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_request_id(message.get("headers", []), ident)
            await send(message)

        await self.app(scope, receive, send_with_id)


# -- health and readiness --------------------------------------------------------------------


def healthz_body(service: str, node: str) -> dict[str, str]:
    return {"status": "ok", "service": service, "node": node}


def readiness(service: str, checks: Mapping[str, str], draining: bool) -> JSONResponse:
    """200 when every check is "ok" and the process is not draining, else 503."""
    ready = all(state == "ok" for state in checks.values()) and not draining
    body = {
        "status": "ready" if ready else "unavailable",
        "service": service,
        "checks": dict(checks),
        "draining": draining,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


async def probe_postgres(pool: asyncpg.Pool) -> str:
    """ "ok", or "down: <error type>"; bounded in time."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await pool.fetchval("SELECT 1")
    except STORE_ERRORS as exc:
        return _down("postgres", exc)
    return "ok"


async def probe_redis(redis: aioredis.Redis) -> str:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        return _down("redis", exc)
    return "ok"


def _down(backend: str, exc: BaseException) -> str:
    logger.warning("readiness: %s is down: %r", backend, exc)
    return f"down: {type(exc).__name__}"
