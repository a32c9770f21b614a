"""HTTP endpoints: the producer API, health and readiness, metrics, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher import metrics, openapi
from dispatcher.publisher import Publisher
from dispatcher.responses import reject
from dispatcher.runtime import Runtime
from dispatcher.validation import Submission, ValidationFailed, validate
from shared import serialization
from shared.auth import bearer_token, producer_key_ok
from shared.body import BadBody, BodyTooLarge, Incoming, read_body
from shared.fallback_jobs import FallbackRequest
from shared.http import JSONResponse, healthz_body, readiness
from shared.metrics import exposition
from shared.models import Notification, Stored
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


async def parse(request: Incoming, rt: Runtime) -> Submission | Response:
    """The validated submission, or the 400/413/422 answer."""
    payload = await _json(request, rt.settings.max_body_bytes)
    if isinstance(payload, Response):
        return payload
    try:
        return validate(payload, rt.settings.max_recipients)
    except ValidationFailed as exc:
        fields = [e.to_wire() for e in exc.errors]
        return reject(422, "validation_error", str(exc), fields=fields)


async def read_json(request: Request) -> Any | Response:
    """Any JSON body within the size limit, or the 400/413 answer."""
    return await _json(request, runtime(request).settings.max_body_bytes)


async def _json(request: Incoming, limit: int) -> Any | Response:
    try:
        return serialization.loads(await read_body(request, limit))
    except BodyTooLarge:
        return reject(413, "payload_too_large", f"request body must be at most {limit} bytes")
    except (BadBody, serialization.SerializationError) as exc:
        return reject(400, "invalid_json", f"request body must be JSON: {exc}")


async def send_notifications(request: Request) -> Response:
    """The Starlette route; the app serves it from dispatcher/fastpath.py, in front."""
    return await send(runtime(request), request)


async def send(rt: Runtime, request: Incoming) -> Response:
    """Validate, commit, and only then publish (guarantee 1; the outbox retries a lost publish)."""
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
    published = await _group_of(rt.publisher).publish(fresh)
    rt.outbox.published(fresh[:published])
    await rt.outbox.publish_replays([s.notification for s in stored if not s.created])


GROUP_MAX = 500  # notifications: a larger publish goes out on its own


class PublishGroup:
    """The publishes of requests that finish at the same moment (a group commit hands back
    many, shared/repository.py) go out as one Publisher.publish call, one pipeline instead of
    one per request; requests finishing meanwhile form the next group. Publisher.publish is
    in order, so each request learns how many of its own went out from where they sat."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._waiting: list[tuple[list[Notification], asyncio.Future[int]]] = []
        self._running: asyncio.Task[None] | None = None
        self._scheduled = False

    async def publish(self, notifications: list[Notification]) -> int:
        if not notifications:
            return 0
        if len(notifications) > GROUP_MAX:
            return await self._publisher.publish(notifications)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((notifications, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if self._scheduled or self._running is not None or not self._waiting:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        group, self._waiting = self._waiting, []
        self._running = asyncio.create_task(self._run(group))
        self._running.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running = None
        self._schedule()

    async def _run(self, group: list[tuple[list[Notification], asyncio.Future[int]]]) -> None:
        try:
            published = await self._publisher.publish([n for notes, _ in group for n in notes])
        except asyncio.CancelledError:
            for _, future in group:
                future.cancel()
            raise
        except Exception as exc:  # Publisher.publish does not raise for Redis: a bug
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        offset = 0
        for notes, future in group:
            if not future.done():
                future.set_result(max(0, min(len(notes), published - offset)))
            offset += len(notes)


_GROUPS: weakref.WeakKeyDictionary[Publisher, PublishGroup] = weakref.WeakKeyDictionary()


def _group_of(publisher: Publisher) -> PublishGroup:
    group = _GROUPS.get(publisher)
    if group is None:
        group = _GROUPS[publisher] = PublishGroup(publisher)
    return group


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
