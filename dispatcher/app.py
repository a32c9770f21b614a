"""The dispatcher's ASGI application: routes, error shape, and resources wired through lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dispatcher.routes import ROUTES
from dispatcher.runtime import Runtime, running
from shared.config import DispatcherSettings
from shared.http import error_response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, exc.detail, headers=exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    return error_response(500, "internal_error", "unexpected server error")


def create_app(settings: DispatcherSettings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Runtime]]:
        async with running(settings) as runtime:
            yield {"runtime": runtime}

    return Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory dispatcher.app:app_from_env`."""
    return create_app(DispatcherSettings.from_env())
