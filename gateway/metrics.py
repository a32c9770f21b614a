"""The gateway's Prometheus families, on the gateway's own registry. Each thing is counted
once, where it happens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from shared import metrics

if TYPE_CHECKING:
    from gateway.runtime import Gateway

REGISTRY = metrics.new_registry()

CONNECTIONS = Gauge(
    "tocsin_gateway_connections", "Open authenticated WebSockets on this node", registry=REGISTRY
)
USERS = Gauge(
    "tocsin_gateway_users", "Distinct users with a socket on this node", registry=REGISTRY
)
FRAMES_SENT = metrics.Tally(
    "tocsin_gateway_frames_sent_total", "Frames written to sockets", registry=REGISTRY
)
ACKS = metrics.Tally("tocsin_gateway_acks_total", "Ack frames received", registry=REGISTRY)
DELIVERY_LATENCY = Histogram(
    "tocsin_gateway_delivery_latency_seconds",
    "Commit (created_at) to a live notification frame written to a socket, per socket",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
RESUME_BACKLOG = Histogram(
    "tocsin_gateway_resume_backlog",
    "Notifications sent as backlog on connect",
    buckets=(0, 1, 5, 20, 100, 500, 2000, 10000),
    registry=REGISTRY,
)
CLOSES = Counter(
    "tocsin_gateway_closes_total",
    "Sockets closed by the server, by close code",
    ["code"],
    registry=REGISTRY,
)
CLOSES.labels(code="4009")  # slow consumer: alerted on, so exported from 0
PUBSUB_CHANNELS = Gauge(
    "tocsin_gateway_pubsub_channels",
    "Redis pub/sub channels this node is subscribed to (its users' and its own)",
    registry=REGISTRY,
)
REDIS_RECONNECTS = Counter(
    "tocsin_redis_reconnects_total", "Pub/sub link to Redis re-established", registry=REGISTRY
)
BACKEND_ERRORS = metrics.backend_errors(REGISTRY)
DB_POOL = metrics.pool_collector(REGISTRY)
READY = metrics.ready_gauge(REGISTRY)


def record_ready(checks: Mapping[str, object], draining: bool) -> bool:
    """Ready as /readyz answers it (every check ok, not draining); sets tocsin_ready."""
    ready = metrics.all_ok(checks) and not draining
    READY.set(1 if ready else 0)
    return ready


async def keep_ready(gateway: Gateway) -> None:
    """Refresh tocsin_ready from the node's readiness every few seconds, forever."""

    async def check() -> bool:
        return record_ready(await gateway.ready(), gateway.draining)

    await metrics.refresh_ready(READY, check)


STORE_POLLING = Gauge(
    "tocsin_gateway_store_polling",
    "1 while this node reads its users' notifications from PostgreSQL because its pub/sub link"
    " is down or silent",
    registry=REGISTRY,
)
