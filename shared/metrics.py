"""Prometheus metric definitions. Each thing is counted once, where it happens."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Dispatcher
NOTIFICATIONS_ACCEPTED = Counter(
    "tocsin_notifications_accepted_total", "Notifications committed to the store", ["type"]
)
NOTIFICATIONS_REPLAYED = Counter(
    "tocsin_notifications_idempotent_replays_total", "Recipients answered from an idempotency key"
)
PUBLISH_FAILURES = Counter(
    "tocsin_publish_failures_total", "Frames committed but not published (Redis unavailable)"
)
REQUESTS_REJECTED = Counter(
    "tocsin_dispatcher_rejected_total", "Producer requests refused", ["status"]
)

# Gateway
CONNECTIONS = Gauge("tocsin_gateway_connections", "Open authenticated WebSockets on this node")
USERS = Gauge("tocsin_gateway_users", "Distinct users with a socket on this node")
FRAMES_SENT = Counter("tocsin_gateway_frames_sent_total", "Frames written to sockets")
ACKS = Counter("tocsin_gateway_acks_total", "Ack frames received")
DELIVERY_LATENCY = Histogram(
    "tocsin_delivery_latency_seconds",
    "Commit (created_at) to frame queued on the socket",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RESUME_BACKLOG = Histogram(
    "tocsin_gateway_resume_backlog",
    "Notifications sent as backlog on connect",
    buckets=(0, 1, 5, 20, 100, 500, 2000, 10000),
)
CLOSES = Counter("tocsin_gateway_closes_total", "Sockets closed by the server", ["code"])
BACKEND_ERRORS = Counter(
    "tocsin_backend_errors_total", "Errors talking to Redis or PostgreSQL", ["backend"]
)
