"""What both services' metrics share: the registry, the DB-pool collector, readiness, labels.

Each service defines its own families on its own registry (gateway/metrics.py,
dispatcher/metrics.py), so a process exports only its own service's metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import asyncpg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from shared.types import BUILTIN_TYPES

logger = logging.getLogger("tocsin.metrics")

READY_INTERVAL = 5.0  # seconds between background readiness checks
OTHER = "other"
UNMATCHED = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BACKENDS = ("postgres", "redis")

# No `*_created` series next to every counter and histogram: they double the series count and
# nothing here reads them (rate() needs only the counter). Process-wide, before any family.
disable_created_metrics()  # type: ignore[no-untyped-call]


def new_registry() -> CollectorRegistry:
    """A service's own registry, with the process_* and python_* collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


# -- bounded labels ------------------------------------------------------------------------


def type_label(kind: str) -> str:
    """Producers may invent types; only the six built-in ones get their own series."""
    return kind if kind in BUILTIN_TYPES else OTHER


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER


def status_label(status: int) -> str:
    return str(status)


def route_label(scope: Mapping[str, Any]) -> str:
    """The path template Starlette's router matched (set in the scope), not the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


# -- families both services have ------------------------------------------------------------


def backend_errors(registry: CollectorRegistry) -> Counter:
    counter = Counter(
        "tocsin_backend_errors_total",
        "Errors talking to Redis or PostgreSQL",
        ["backend"],
        registry=registry,
    )
    for backend in BACKENDS:  # exported at 0 from the start, so rate() sees the first error
        counter.labels(backend=backend)
    return counter


def ready_gauge(registry: CollectorRegistry) -> Gauge:
    return Gauge(
        "tocsin_ready",
        "1 when the service is ready (what /readyz answers), else 0",
        registry=registry,
    )


def all_ok(checks: Mapping[str, object]) -> bool:
    """Readiness checks pass: every value is True or "ok" (either shape of /readyz checks)."""
    return all(value is True or value == "ok" for value in checks.values())


async def refresh_ready(
    gauge: Gauge, check: Callable[[], Awaitable[bool]], interval: float = READY_INTERVAL
) -> None:
    """Set the readiness gauge from `check` forever; a failing check counts as not ready."""
    while True:
        try:
            ready = await check()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("readiness check failed")
            ready = False
        gauge.set(1 if ready else 0)
        await asyncio.sleep(interval)


class Tally(Collector):
    """A counter for the per-message path: a plain int, no lock (the event loop is the only
    writer; a scrape from another thread reads a value at most one increment old).
    prometheus_client's Counter takes a mutex per inc(), which was 6.5% of a saturated
    gateway's CPU (py-spy)."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        if not name.endswith("_total"):
            raise ValueError("a counter's name ends with _total")
        self.name = name[: -len("_total")]
        self.documentation = documentation
        self.value = 0
        registry.register(self)

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.value)


class PoolCollector(Collector):
    """tocsin_db_pool_*: read at scrape time from the asyncpg pools this process uses."""

    def __init__(self) -> None:
        self._pools: list[asyncpg.Pool] = []

    def watch(self, pool: asyncpg.Pool) -> None:
        self._pools.append(pool)

    def forget(self, pool: asyncpg.Pool) -> None:
        with contextlib.suppress(ValueError):
            self._pools.remove(pool)

    def collect(self) -> Iterable[Metric]:
        pools = [pool for pool in list(self._pools) if not pool.is_closing()]
        idle = sum(pool.get_idle_size() for pool in pools)
        in_use = sum(pool.get_size() for pool in pools) - idle
        connections = GaugeMetricFamily(
            "tocsin_db_pool_connections",
            "PostgreSQL connections open in this process's pool, by state",
            labels=["state"],
        )
        connections.add_metric(["in_use"], in_use)
        connections.add_metric(["idle"], idle)
        yield connections
        yield GaugeMetricFamily(
            "tocsin_db_pool_max_connections",
            "Most PostgreSQL connections the pool may open (TOCSIN_DB_POOL_MAX)",
            value=sum(pool.get_max_size() for pool in pools),
        )
        yield GaugeMetricFamily(
            "tocsin_db_pool_waiting",
            "Acquires waiting for a free PostgreSQL connection",
            value=sum(_waiting(pool) for pool in pools),
        )


def _waiting(pool: asyncpg.Pool) -> int:
    # asyncpg has no public count of blocked acquires: they wait on the pool's holder queue
    # (an asyncio.Queue of max_size slots). tests/metrics pins this against a real pool.
    queue = getattr(pool, "_queue", None)
    return len(getattr(queue, "_getters", ()))


def pool_collector(registry: CollectorRegistry) -> PoolCollector:
    collector = PoolCollector()
    registry.register(collector)
    return collector


# -- exposition ----------------------------------------------------------------------------


def exposition(registry: CollectorRegistry) -> Response:
    """The registry in Prometheus text format, for a `/metrics` route on the service port."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@contextlib.contextmanager
def listener(registry: CollectorRegistry, host: str, port: int) -> Iterator[None]:
    """Serve only `/metrics` on host:port in a thread (no-op for port 0), stopped on exit."""
    if not port:
        yield
        return
    server, thread = start_http_server(port, host, registry=registry)
    logger.info("metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
