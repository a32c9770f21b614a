"""`tocsin worker`: the worker loop inside a small HTTP service (/healthz, /readyz, /metrics on
TOCSIN_WORKER_METRICS_PORT) run by uvicorn, which also turns SIGTERM into a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.fallback import metrics
from dispatcher.fallback.context import Context
from dispatcher.fallback.email import Composer
from dispatcher.fallback.jobs import Queue
from dispatcher.fallback.push import Pusher
from dispatcher.fallback.worker import Worker
from shared.config import StoreSettings, WorkerSettings
from shared.http import JSONResponse, exception_handlers, healthz_body, probe_postgres, readiness
from shared.metrics import all_ok, exposition, refresh_ready
from shared.repository import open_pool

logger = logging.getLogger("tocsin.worker")

STOP_MARGIN = 5.0  # seconds beyond the longest send for the jobs in flight at a stop


@asynccontextmanager
async def running(settings: WorkerSettings) -> AsyncIterator[asyncpg.Pool]:
    """The pool, the senders and the worker loop, stopped (jobs in flight finished) on exit."""
    store = StoreSettings(settings.database_url, "", 1, settings.pool_max)
    pool = await open_pool(store)
    metrics.DB_POOL.watch(pool)
    client = httpx.AsyncClient()
    ctx = Context(
        settings=settings,
        pool=pool,
        queue=Queue(pool, settings.node_id, settings.lease, settings.digest_window),
        composer=Composer(settings.email) if settings.email else None,
        pusher=Pusher(settings.vapid, client) if settings.vapid else None,
    )
    stop = asyncio.Event()
    loop = asyncio.create_task(Worker(ctx).run(stop))
    _log_channels(settings)
    try:
        yield pool
    finally:
        stop.set()
        longest = max(
            settings.email.smtp.timeout if settings.email else 0.0,
            settings.vapid.timeout if settings.vapid else 0.0,
        )
        try:
            await asyncio.wait_for(loop, longest + STOP_MARGIN)
        except TimeoutError:
            logger.warning("jobs still in flight at stop; their leases run out and others retry")
        metrics.DB_POOL.forget(pool)
        await client.aclose()
        await pool.close()


def _log_channels(settings: WorkerSettings) -> None:
    email = "on" if settings.email else "off (TOCSIN_SMTP_URL unset: email jobs are cancelled)"
    push = "on" if settings.vapid else "off (TOCSIN_VAPID_* unset: push jobs are cancelled)"
    logger.info("worker %s started: email %s, push %s", settings.node_id, email, push)


def create_app(settings: WorkerSettings) -> Starlette:
    held: dict[str, asyncpg.Pool] = {}
    stopping: list[bool] = []

    async def checks() -> dict[str, str]:
        pool = held.get("pool")
        return {"postgres": await probe_postgres(pool) if pool else "starting"}

    async def healthz(request: Request) -> Response:
        return JSONResponse(healthz_body("worker", settings.node_id))

    async def ready_now() -> bool:
        return all_ok(await checks()) and not stopping

    async def readyz(request: Request) -> Response:
        found = await checks()
        metrics.READY.set(1 if all_ok(found) and not stopping else 0)
        return readiness("worker", found, draining=bool(stopping))

    async def metrics_endpoint(request: Request) -> Response:
        return exposition(metrics.REGISTRY)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(settings) as pool:
            held["pool"] = pool
            # tocsin_ready without a probe calling /readyz (tocsin run, systemd), as elsewhere.
            refresher = asyncio.create_task(refresh_ready(metrics.READY, ready_now))
            try:
                yield
            finally:
                stopping.append(True)
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers())


def serve(settings: WorkerSettings, log_level: str) -> bool:
    """Run until SIGTERM / Ctrl-C; False when start-up failed."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.metrics_host,
        port=settings.metrics_port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        log_config=None,
        log_level=log_level,
    )
    server = uvicorn.Server(config)
    server.run()
    return bool(server.started)
