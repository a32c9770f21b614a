"""Development-only demo (`TOCSIN_DEMO=true`, set by `tocsin run`): a page with one user's bell
and toasts (`/demo?user=ID`, default `demo`), its token, and a panel that sends each built-in
type through the dispatcher with the producer client, exactly as a producer would."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

import tocsin_client
from gateway.runtime import Gateway
from shared import serialization
from shared.auth import user_id_problem
from shared.http import JSONResponse, error_response
from shared.types import BUILTIN_TYPES, is_valid_type

STATIC_DIR = Path(__file__).parent / "static"
MAX_SEND = 200
DEFAULT_USER = "demo"  # the README's Quick start sends to this user; `/demo?user=ID` picks another

SAMPLES: dict[str, tuple[str, str, str]] = {
    "order:status_changed": ("Order #1042 shipped", "Your order is on its way.", "/orders/1042"),
    "message:received": ("New message from Ana", "Are you free at 3pm?", "/inbox/77"),
    "mention:comment": ("Sam mentioned you", "@you can you review this?", "/posts/9#c3"),
    "task:assigned": ("Task assigned to you", "Prepare the Q4 report", "/tasks/311"),
    "payment:processed": ("Payment received", "$49.00 from ACME Corp", "/billing/inv-88"),
    "system:alert": ("Scheduled maintenance", "Tonight 02:00-02:30 UTC", "/status"),
}


def _bad_user(user: object) -> Response | None:
    """A bad id is refused, never replaced by the default user."""
    problem = user_id_problem(user)
    if problem is None:
        return None
    return error_response(422, "validation_error", f"user {problem}", field="user")


async def page(request: Request) -> Response:
    html = STATIC_DIR / "demo.html"
    if not html.is_file():
        return error_response(503, "not_built", "browser files not built: run `make install`")
    return FileResponse(html)


async def config(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    jwt = gateway.settings.jwt
    assert jwt.secret is not None  # demo mode runs with the embedded HS256 secret
    user = request.query_params.get("user", DEFAULT_USER)
    if refused := _bad_user(user):
        return refused
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return JSONResponse(
        {
            "userId": user,
            "token": tocsin_client.user_token(
                user, jwt.secret, ttl=3600, audience=jwt.audience, issuer=jwt.issuer
            ),
            "wsUrl": f"{scheme}://{request.url.netloc}/v1/ws",
            "apiBase": "/v1",
            "types": list(BUILTIN_TYPES),
        }
    )


async def send(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        body = serialization.loads(await request.body())
    except serialization.SerializationError:
        return error_response(400, "bad_json", "body must be JSON")
    if not isinstance(body, dict):
        return error_response(422, "validation_error", "body must be an object", field="body")
    kind = body.get("type")
    if not isinstance(kind, str) or not is_valid_type(kind):
        return error_response(422, "validation_error", "unknown type", field="type")
    count = body.get("count", 1)
    if not isinstance(count, int) or not 1 <= count <= MAX_SEND:
        return error_response(
            422, "validation_error", f"count must be 1..{MAX_SEND}", field="count"
        )
    user = body.get("user", DEFAULT_USER)
    if refused := _bad_user(user):
        return refused
    title, text, url = SAMPLES.get(kind, (kind, "Sample notification", "/"))
    assert gateway.settings.producer_key is not None
    sent = []
    async with tocsin_client.AsyncClient(
        gateway.settings.dispatcher_url, gateway.settings.producer_key
    ) as client:
        for i in range(count):
            suffix = f" ({i + 1})" if count > 1 else ""
            result = await client.send(user, kind, title + suffix, text, action_url=url)
            sent.append({"id": result.id, "seq": result.seq})
    return JSONResponse({"sent": sent})


routes = [
    Route("/demo", page, methods=["GET"]),
    Route("/demo/config", config, methods=["GET"]),
    Route("/demo/send", send, methods=["POST"]),
]
