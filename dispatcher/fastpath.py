"""`POST /v1/notifications`, the producer's send, served in front of the Starlette app.

Every send used to pass Starlette's error middleware, RequestMetrics, RequestIdMiddleware,
the exception middleware, the router and a Request: about as much CPU again as the send
itself. This ASGI callable answers that one method and path itself, with the
same pieces those layers use (shared/http.py for the request id and the error answers,
dispatcher/metrics.py for the duration histogram, routes.send for the rest); the app
(dispatcher/app.py) hands every other request, and the lifespan, to Starlette. The Starlette
route stays: /openapi.json describes it, a GET on the path is refused against it (405), and
tests/dispatcher/test_fastpath.py holds this path to it, answer for answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from dispatcher import metrics, routes
from dispatcher.runtime import Runtime
from shared.http import exception_handlers, start_request, with_request_id

Handler = Callable[[HTTPConnection, Exception], Awaitable[Response]]

PATH = routes.NOTIFICATIONS_PATH
METHOD = "POST"


def handles(scope: Scope) -> bool:
    """This is a send: POST /v1/notifications (under no root path, where the router's own
    matching would apply)."""
    return (
        scope["type"] == "http"
        and scope["path"] == PATH
        and scope["method"] == METHOD
        and not scope.get("root_path")
    )


class _Request:
    """What routes.send reads of a request (shared/body.Incoming): headers, first one of a
    name winning as in Starlette's Headers, and the body's receive."""

    __slots__ = ("headers", "receive")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        self.headers = headers
        self.receive = receive


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """One send, answered as the Starlette stack answers it: X-Request-ID on every answer, an
    exception answered by the app's handler for it (shared/http.exception_handlers: 503
    `unavailable` for a backend error), and one no other handler takes answered 500
    `internal_error`, then re-raised for uvicorn to log; each timed in the request-duration
    histogram."""
    start = time.perf_counter()
    status = 500  # as RequestMetrics: an exception before any response is a 500
    ident = start_request(scope)
    try:
        try:
            response = await _send(scope, receive)
        except Exception as exc:
            handler = _handler(exc)
            answer = await handler(HTTPConnection(scope), exc)
            if handler is _LAST_RESORT:
                # Starlette's outermost layer: past the request id middleware (the answer
                # carries the id itself) and the metrics, which count the 500.
                await answer(scope, receive, send)
                raise
            response = answer
        status = response.status_code
        headers = with_request_id(response.raw_headers, ident)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
    finally:
        metrics.observe_request(PATH, METHOD, status, time.perf_counter() - start)


async def _send(scope: Scope, receive: Receive) -> Response:
    runtime = scope["state"]["runtime"]
    assert isinstance(runtime, Runtime), "lifespan did not run"
    return await routes.send(runtime, _Request(scope, receive))


_HANDLERS: dict[Any, Handler] = exception_handlers()
_LAST_RESORT = _HANDLERS[Exception]


def _handler(exc: Exception) -> Handler:
    """The app's handler for `exc`, looked up as Starlette does: the nearest class."""
    for cls in type(exc).__mro__:
        if cls in _HANDLERS:
            return _HANDLERS[cls]
    return _LAST_RESORT
