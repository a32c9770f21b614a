"""The dispatcher's ASGI application: routes, the shared HTTP edge, resources via lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from dispatcher import fastpath
from dispatcher.metrics import RequestMetrics
from dispatcher.routes import ROUTES
from dispatcher.runtime import Runtime, running
from shared.config import DispatcherSettings
from shared.http import RequestIdMiddleware, exception_handlers


class DispatcherApp(Starlette):
    """The Starlette app, with the producer's send served in front (dispatcher/fastpath.py)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if fastpath.handles(scope):
            await fastpath.serve(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: DispatcherSettings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Runtime]]:
        async with running(settings) as runtime:
            yield {"runtime": runtime}

    return DispatcherApp(
        routes=ROUTES,
        lifespan=lifespan,
        # RequestMetrics first: it times the request id's work too, and reads the route the
        # router matched from the shared scope once the request is done.
        middleware=[Middleware(RequestMetrics), Middleware(RequestIdMiddleware)],
        exception_handlers=exception_handlers(),
    )


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory dispatcher.app:app_from_env`."""
    return create_app(DispatcherSettings.from_env())
