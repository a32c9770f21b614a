"""The dispatcher's Prometheus families, on the dispatcher's own registry, and the ASGI
middleware that times every request."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.types import BUILTIN_TYPES

REGISTRY = metrics.new_registry()

REQUEST_DURATION = Histogram(
    "tocsin_dispatcher_request_duration_seconds",
    "HTTP requests from first byte in to last byte out, by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
NOTIFICATIONS_ACCEPTED = Counter(
    "tocsin_notifications_accepted_total",
    "Notifications committed to the store, by type (built-in types, else 'other')",
    ["type"],
    registry=REGISTRY,
)
NOTIFICATIONS_REPLAYED = Counter(
    "tocsin_notifications_idempotent_replays_total",
    "Recipients answered from an idempotency key",
    registry=REGISTRY,
)
PUBLISH_FAILURES = Counter(
    "tocsin_publish_failures_total",
    "Frames committed but not published (Redis unavailable)",
    registry=REGISTRY,
)
REQUESTS_REJECTED = Counter(
    "tocsin_dispatcher_rejected_total",
    "Producer requests refused, by status",
    ["status"],
    registry=REGISTRY,
)
for _kind in (*BUILTIN_TYPES, metrics.OTHER):  # the whole bounded set, exported from 0
    NOTIFICATIONS_ACCEPTED.labels(type=_kind)
BACKEND_ERRORS = metrics.backend_errors(REGISTRY)
DB_POOL = metrics.pool_collector(REGISTRY)
READY = metrics.ready_gauge(REGISTRY)

OUTBOX_REPUBLISHED = Counter(
    "tocsin_outbox_republished_total",
    "Notifications the outbox published after they stayed unpublished past TOCSIN_OUTBOX_DELAY"
    " (a lost publish, a dispatcher gone after its commit, an idempotent replay)",
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "tocsin_outbox_pending",
    "Notifications unpublished past TOCSIN_OUTBOX_DELAY found by this dispatcher's last"
    " outbox scan (at most one batch, 500)",
    registry=REGISTRY,
)


# The labelled children, looked up once per label set: labels() takes a lock and builds a
# key on every call. Every label here is from a bounded set (shared/metrics.py).


@functools.cache
def _accepted(type_label: str) -> Counter:
    return NOTIFICATIONS_ACCEPTED.labels(type=type_label)


@functools.cache
def _rejected(status: int) -> Counter:
    return REQUESTS_REJECTED.labels(status=metrics.status_label(status))


@functools.cache
def _duration(route: str, method_label: str, status: int) -> Histogram:
    return REQUEST_DURATION.labels(
        route=route, method=method_label, status=metrics.status_label(status)
    )


def accepted(kind: str, count: int) -> None:
    _accepted(metrics.type_label(kind)).inc(count)


def rejected(status: int) -> None:
    _rejected(status).inc()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request in tocsin_dispatcher_request_duration_seconds."""
    _duration(route, metrics.method_label(method), status).observe(seconds)


def record_ready(checks: Mapping[str, object]) -> bool:
    """Ready as /readyz answers it (every check ok); sets tocsin_ready."""
    ready = metrics.all_ok(checks)
    READY.set(1 if ready else 0)
    return ready


async def keep_ready(ready: Callable[[], Awaitable[Mapping[str, object]]]) -> None:
    """Refresh tocsin_ready from the dispatcher's readiness checks every few seconds, forever."""

    async def check() -> bool:
        return record_ready(await ready())

    await metrics.refresh_ready(READY, check)


class RequestMetrics:
    """Times each HTTP request around the whole app, labelled after the router has matched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception before any response is a 500 to the client

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            observe_request(metrics.route_label(scope), scope["method"], status, elapsed)
