"""The gateway ASGI app: the browser REST API, health, metrics, static files. `/v1/ws` is
upgraded and served by the WebSocket protocol in gateway/server.py, ahead of this app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway import demo, preferences_api, rest, unsubscribe
from gateway import metrics as gateway_metrics
from gateway.runtime import Gateway
from gateway.settings import GatewaySettings
from shared.http import (
    JSONResponse,
    RequestIdMiddleware,
    exception_handlers,
    healthz_body,
    readiness,
)
from shared.metrics import exposition, listener


async def healthz(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return JSONResponse(healthz_body("gateway", gateway.settings.node_id))


async def readyz(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    checks = await gateway.ready()
    gateway_metrics.record_ready(checks, gateway.draining)
    return readiness("gateway", checks, gateway.draining)


async def metrics(request: Request) -> Response:
    return exposition(gateway_metrics.REGISTRY)


def create_app(settings: GatewaySettings) -> Starlette:
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with listener(gateway_metrics.REGISTRY, settings.metrics_host, settings.metrics_port):
            await gateway.start()
            try:
                yield
            finally:
                await gateway.stop()

    routes: list[BaseRoute] = [
        *rest.routes,
        *preferences_api.routes,
        *unsubscribe.routes(settings.unsubscribe_secret, lambda: gateway.repo.pool),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/static", StaticFiles(directory=demo.STATIC_DIR, check_dir=False), name="static"),
    ]
    if not settings.metrics_port:  # else only the separate metrics listener serves it
        routes.append(Route("/metrics", metrics))
    if settings.demo:
        routes += demo.routes
    origins = ["*"] if "*" in settings.allowed_origins else list(settings.allowed_origins)
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(
            rest.Cors,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
            max_age=600,
        ),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers=exception_handlers(),
    )
    app.state.gateway = gateway
    return app
