"""Browser REST API (same JWT as the socket): feed, counts and read state."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from gateway.runtime import Gateway
from gateway.session import MAX_SEQ
from shared import serialization
from shared.auth import AuthError, bearer_token, verify_user_token
from shared.body import BadBody, BodyTooLarge, read_body
from shared.http import JSONResponse, error_response
from shared.types import is_valid_type

logger = logging.getLogger("tocsin.gateway.rest")

Handler = Callable[[Request, Gateway, str], Awaitable[Response]]


class Cors(CORSMiddleware):
    """Starlette's CORS, with a refused preflight in the JSON error shape and logged."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code < 400:
            return answer
        origin = request_headers.get("origin", "")
        if not self.is_allowed_origin(origin):
            logger.warning(
                "CORS preflight refused: Origin %r is not in TOCSIN_ALLOWED_ORIGINS",
                origin[:200],
            )
        message = bytes(answer.body).decode(errors="replace")
        headers = {k: v for k, v in answer.headers.items() if k.lower().startswith("access-")}
        return error_response(answer.status_code, "cors_refused", message, headers=headers)


class BadRequest(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


async def json_body(request: Request) -> Any:
    """The request's body parsed as JSON; BadRequest (field "body") when it is not JSON."""
    try:
        return serialization.loads(await request.body())
    except serialization.SerializationError:
        raise BadRequest("body", "body must be JSON") from None


def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Resolve the caller's user id from `Authorization: Bearer <JWT>`; 401 otherwise."""

    async def endpoint(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return error_response(401, "unauthorized", "Authorization: Bearer <JWT> required")
        try:
            claims = verify_user_token(token, gateway.settings.jwt)
        except AuthError as exc:
            return error_response(401, "unauthorized", exc.reason)
        limit = gateway.settings.rest_max_body
        try:
            request = await _bounded(request, limit)
            return await handler(request, gateway, claims.user_id)
        except BodyTooLarge:
            message = f"request body must be at most {limit} bytes (TOCSIN_REST_MAX_BODY)"
            return error_response(413, "payload_too_large", message)
        except BadBody as exc:
            return error_response(400, "bad_request", str(exc))
        except BadRequest as exc:
            return error_response(422, "validation_error", exc.message, field=exc.field)

    return endpoint


async def _bounded(request: Request, limit: int) -> Request:
    """The request with its body read under the limit (counted as it arrives, whatever
    Content-Length says), so no handler ever buffers more than TOCSIN_REST_MAX_BODY."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return request
    body = await read_body(request, limit)

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, replay)


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 19


def _feed_query(request: Request) -> dict[str, Any]:
    params = request.query_params
    cursor = params.get("cursor")
    if cursor is not None and not (_digits(cursor) and int(cursor) <= MAX_SEQ):
        raise BadRequest("cursor", "cursor must be a value from nextCursor")
    limit_raw = params.get("limit", "20")
    if not _digits(limit_raw) or not 1 <= int(limit_raw) <= 100:
        raise BadRequest("limit", "limit must be an integer from 1 to 100")
    unread = params.get("unread", "false").lower()
    if unread not in ("true", "false"):
        raise BadRequest("unread", "unread must be true or false")
    types = tuple(t for t in params.get("type", "").split(",") if t)
    bad = [t for t in types if not is_valid_type(t)]
    if bad:
        raise BadRequest("type", f"not a notification type: {bad[0]!r}")
    return {
        "before_seq": int(cursor) if cursor is not None else None,
        "limit": int(limit_raw),
        "unread_only": unread == "true",
        "types": types,
    }


async def feed(request: Request, gateway: Gateway, user_id: str) -> Response:
    page = await gateway.repo.feed(user_id, **_feed_query(request))
    counts = await gateway.repo.counts(user_id)
    return JSONResponse(
        {
            "notifications": [n.to_wire() for n in page.notifications],
            "nextCursor": None if page.next_cursor is None else str(page.next_cursor),
            **counts.to_wire(),
        }
    )


async def unread_count(request: Request, gateway: Gateway, user_id: str) -> Response:
    return JSONResponse((await gateway.repo.counts(user_id)).to_wire())


def change_one(action: str) -> Handler:
    async def handler(request: Request, gateway: Gateway, user_id: str) -> Response:
        result = await gateway.read_state.change_one(
            action, user_id, request.path_params["notification_id"]
        )
        if result is None:
            return error_response(404, "not_found", "no such notification")
        notification, counts = result
        return JSONResponse({"notification": notification.to_wire(), **counts.to_wire()})

    return handler


async def _up_to_seq(request: Request) -> int | None:
    if not (await request.body()).strip():
        return None
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("body", "body must be a JSON object")
    value = body.get("upToSeq")
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQ
    ):
        raise BadRequest("upToSeq", f"upToSeq must be an integer from 0 to {MAX_SEQ}")
    return value


async def read_all(request: Request, gateway: Gateway, user_id: str) -> Response:
    updated, counts = await gateway.read_state.read_all(user_id, await _up_to_seq(request))
    return JSONResponse({"updated": updated, **counts.to_wire()})


async def seen_all(request: Request, gateway: Gateway, user_id: str) -> Response:
    updated, counts = await gateway.read_state.seen_all(user_id, await _up_to_seq(request))
    return JSONResponse({"updated": updated, **counts.to_wire()})


routes = [
    Route("/v1/notifications", authenticated(feed), methods=["GET"]),
    Route("/v1/notifications/unread-count", authenticated(unread_count), methods=["GET"]),
    Route("/v1/notifications/read-all", authenticated(read_all), methods=["POST"]),
    Route("/v1/notifications/seen-all", authenticated(seen_all), methods=["POST"]),
    Route(
        "/v1/notifications/{notification_id}/read",
        authenticated(change_one("read")),
        methods=["POST"],
    ),
    Route(
        "/v1/notifications/{notification_id}/unread",
        authenticated(change_one("unread")),
        methods=["POST"],
    ),
    Route(
        "/v1/notifications/{notification_id}/archive",
        authenticated(change_one("archive")),
        methods=["POST"],
    ),
]
