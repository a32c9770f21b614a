"""The worker's Prometheus families, on its own registry (prefix tocsin_worker_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared import metrics
from shared.fallback_rules import CHANNELS

REGISTRY = metrics.new_registry()

# Outcomes: sent; skipped (acked, read, archived, expired, preferences, no address or push
# subscription, not configured, already sent); retried; failed (given up or refused);
# unknown (a crash at the point of no return: not sent again); postponed (quiet hours).
OUTCOMES = ("sent", "skipped", "retried", "failed", "unknown", "postponed")

JOBS = Counter(
    "tocsin_worker_jobs_total",
    "Fallback jobs handled, by channel and outcome",
    ["channel", "outcome"],
    registry=REGISTRY,
)
JOBS_QUEUED = Gauge(
    "tocsin_worker_jobs_queued",
    "Pending fallback jobs, due or not, by channel (read at each poll)",
    ["channel"],
    registry=REGISTRY,
)
JOBS_DUE = Gauge(
    "tocsin_worker_jobs_due",
    "Pending fallback jobs already due, by channel (read at each poll)",
    ["channel"],
    registry=REGISTRY,
)
SEND_SECONDS = Histogram(
    "tocsin_worker_send_seconds",
    "Time to hand one email or push to the SMTP server or push service, by channel",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
    registry=REGISTRY,
)
DIGESTS = Counter(
    "tocsin_worker_digests_total",
    "Digest emails sent (each covers several notifications)",
    registry=REGISTRY,
)
PUSH_SUBSCRIPTIONS_REMOVED = Counter(
    "tocsin_worker_push_subscriptions_removed_total",
    "Push subscriptions removed because the push service answered 404 or 410",
    registry=REGISTRY,
)
for _channel in CHANNELS:  # the whole bounded set, exported from 0
    for _outcome in OUTCOMES:
        JOBS.labels(channel=_channel, outcome=_outcome)
    JOBS_QUEUED.labels(channel=_channel)
    JOBS_DUE.labels(channel=_channel)
    SEND_SECONDS.labels(channel=_channel)
BACKEND_ERRORS = metrics.backend_errors(REGISTRY)
DB_POOL = metrics.pool_collector(REGISTRY)
READY = metrics.ready_gauge(REGISTRY)
