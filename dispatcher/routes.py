"""HTTP endpoints: the producer API, health and readiness, metrics, and the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher import metrics, openapi
from dispatcher.responses import reject
from dispatcher.runtime import Runtime
from dispatcher.validation import Submission, ValidationFailed, validate
from shared import serialization
from shared.auth import bearer_token, producer_key_ok
from shared.body import BadBody, BodyTooLarge, read_body
from shared.fallback_jobs import FallbackRequest
from shared.http import JSONResponse, healthz_body, readiness
from shared.metrics import exposition
from shared.models import Stored
from shared.repository import STORE_ERRORS

logger = logging.getLogger("tocsin.dispatcher")

NOTIFICATIONS_PATH = "/v1/notifications"


def runtime(request: Request) -> Runtime:
    found = request.state.runtime
    assert isinstance(found, Runtime), "lifespan did not run"
    return found


def authenticate(header: str | None, keys: tuple[str, ...]) -> Response | None:
    """None when the producer key is accepted, else the 401/403 answer."""
    presented = bearer_token(header)
    if presented is None:
        return reject(
            401,
            "unauthorized",
            "send the producer key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not producer_key_ok(presented, keys):
        return reject(403, "forbidden", "producer key not accepted")
    return None


async def parse(request: Request, rt: Runtime) -> Submission | Response:
    """The validated submission, or the 400/413/422 answer."""
    payload = await read_json(request)
    if isinstance(payload, Response):
        return payload
    try:
        return validate(payload, rt.settings.max_recipients)
    except ValidationFailed as exc:
        fields = [e.to_wire() for e in exc.errors]
        return reject(422, "validation_error", str(exc), fields=fields)


async def read_json(request: Request) -> Any | Response:
    """Any JSON body within the size limit, or the 400/413 answer."""
    limit = runtime(request).settings.max_body_bytes
    try:
        return serialization.loads(await read_body(request, limit))
    except BodyTooLarge:
        return reject(413, "payload_too_large", f"request body must be at most {limit} bytes")
    except (BadBody, serialization.SerializationError) as exc:
        return reject(400, "invalid_json", f"request body must be JSON: {exc}")


async def send_notifications(request: Request) -> Response:
    """Validate, commit, and only then publish (guarantee 1; the outbox retries a lost publish)."""
    rt = runtime(request)
    denied = authenticate(request.headers.get("authorization"), rt.settings.producer_keys)
    if denied is not None:
        return denied
    submission = await parse(request, rt)
    if isinstance(submission, Response):
        return submission
    try:
        stored = await rt.repository.insert(
            submission.notification, submission.user_ids, fallback_request(rt, submission)
        )
    except STORE_ERRORS as exc:
        metrics.BACKEND_ERRORS.labels(backend="postgres").inc()
        logger.warning("store unavailable, notification refused: %r", exc)
        return reject(
            503,
            "store_unavailable",
            "the notification store is unavailable; nothing was stored, retry later",
            headers={"Retry-After": "1"},
        )
    await publish(rt, stored)
    return accepted(submission.notification.type, stored)


async def publish(rt: Runtime, stored: Sequence[Stored]) -> None:
    """New rows now; replays too when their first publish was lost (the outbox would
    publish them anyway, within its delay)."""
    fresh = [s.notification for s in stored if s.created]
    published = await rt.publisher.publish(fresh)
    rt.outbox.published(fresh[:published])
    await rt.outbox.publish_replays([s.notification for s in stored if not s.created])


def fallback_request(rt: Runtime, submission: Submission) -> FallbackRequest:
    """The push / email jobs this send may need (shared/fallback_rules.py)."""
    rules = rt.settings.fallback_rules
    kind = submission.notification.type
    return FallbackRequest(rules.plan(kind, submission.channels), submission.email)


def accepted(kind: str, stored: Sequence[Stored]) -> Response:
    """201 when anything was created, 200 when every recipient was an idempotent replay."""
    created = sum(1 for s in stored if s.created)
    if created:
        metrics.accepted(kind, created)
    if created < len(stored):
        metrics.NOTIFICATIONS_REPLAYED.inc(len(stored) - created)
    items = [
        {
            "user_id": s.notification.user_id,
            "id": s.notification.id,
            "seq": s.notification.seq,
            "created": s.created,
        }
        for s in stored
    ]
    return JSONResponse({"notifications": items}, status_code=201 if created else 200)


async def healthz(request: Request) -> Response:
    return JSONResponse(healthz_body("dispatcher", runtime(request).node))


async def readyz(request: Request) -> Response:
    # The dispatcher never drains: on SIGTERM uvicorn stops accepting, then finishes requests.
    checks = await runtime(request).ready()
    metrics.record_ready(checks)
    return readiness("dispatcher", checks, draining=False)


async def metrics_endpoint(request: Request) -> Response:
    if runtime(request).settings.metrics_port:
        raise HTTPException(404)  # served only by the separate metrics listener
    return exposition(metrics.REGISTRY)


async def openapi_endpoint(request: Request) -> Response:
    settings = runtime(request).settings
    return JSONResponse(openapi.document(settings.max_recipients, settings.max_body_bytes))


def _user_routes() -> list[Route]:
    from dispatcher.users import ROUTES as USER_ROUTES  # it uses this module's helpers

    return USER_ROUTES


ROUTES = [
    Route(NOTIFICATIONS_PATH, send_notifications, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
    Route("/openapi.json", openapi_endpoint, methods=["GET"]),
    *_user_routes(),
]
