"""Browser REST for a user's own preferences and web push subscriptions, and the service worker.

Every route acts on the user named by the JWT's `sub`; no route takes a user id, so another
user's data cannot be addressed at all.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from gateway.demo import STATIC_DIR
from gateway.rest import BadRequest, authenticated, json_body
from gateway.runtime import Gateway
from shared import fallback_jobs, preferences_store
from shared.http import JSONResponse, error_response
from shared.preferences import Preferences, PreferencesError, PushSubscription
from shared.types import BUILTIN_TYPES

SERVICE_WORKER = STATIC_DIR / "tocsin-sw.js"


def _checked(error: PreferencesError) -> BadRequest:
    return BadRequest(error.field, f"{error.field}: {error.message}")


async def get_preferences(request: Request, gateway: Gateway, user_id: str) -> Response:
    prefs = await preferences_store.get(gateway.repo.pool, user_id)
    return JSONResponse(prefs.to_wire())


async def put_preferences(request: Request, gateway: Gateway, user_id: str) -> Response:
    try:
        prefs = Preferences.from_wire(await json_body(request))
    except PreferencesError as exc:
        raise _checked(exc) from None
    await fallback_jobs.save_preferences(gateway.repo.pool, user_id, prefs)
    return JSONResponse(prefs.to_wire())


async def default_channels(request: Request) -> Response:
    """Each built-in type's channels, and custom types', before any preferences: the panel shows
    a type's effective setting with them. Configuration, not user data, so no token."""
    rules = request.app.state.gateway.settings.fallback_rules
    types = {kind: list(rules.defaults(kind)) for kind in BUILTIN_TYPES}
    return JSONResponse({"types": types, "custom": list(rules.custom_default)})


async def add_subscription(request: Request, gateway: Gateway, user_id: str) -> Response:
    try:
        subscription = PushSubscription.from_wire(
            await json_body(request), request.headers.get("user-agent")
        )
    except PreferencesError as exc:
        raise _checked(exc) from None
    created = await preferences_store.add_push_subscription(
        gateway.repo.pool, user_id, subscription
    )
    return JSONResponse({"endpoint": subscription.endpoint}, status_code=201 if created else 200)


async def remove_subscription(request: Request, gateway: Gateway, user_id: str) -> Response:
    body = await json_body(request)
    endpoint = body.get("endpoint") if isinstance(body, dict) else None
    if not isinstance(endpoint, str) or not endpoint:
        raise BadRequest("endpoint", "endpoint must be the subscription's endpoint URL")
    removed = await preferences_store.remove_push_subscription(
        gateway.repo.pool, endpoint, user_id=user_id
    )
    if not removed:
        return error_response(404, "not_found", "no such push subscription")
    return Response(status_code=204)


async def public_key(request: Request) -> Response:
    """The VAPID application server key for `pushManager.subscribe`; public, so no token."""
    gateway: Gateway = request.app.state.gateway
    key = gateway.settings.vapid_public_key
    if key is None:
        return error_response(
            404, "not_configured", "web push is not configured (TOCSIN_VAPID_PUBLIC_KEY)"
        )
    return JSONResponse({"publicKey": key})


async def service_worker(request: Request) -> Response:
    """Served from the root so its scope may be the whole origin (Service-Worker-Allowed);
    no-cache so browsers check for a new version on every registration update."""
    if not SERVICE_WORKER.is_file():
        return error_response(503, "not_built", "browser files not built: run `make install`")
    return FileResponse(
        SERVICE_WORKER,
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


routes = [
    Route("/v1/preferences", authenticated(get_preferences), methods=["GET"]),
    Route("/v1/preferences", authenticated(put_preferences), methods=["PUT"]),
    Route("/v1/preferences/defaults", default_channels, methods=["GET"]),
    Route("/v1/push-subscriptions", authenticated(add_subscription), methods=["POST"]),
    Route("/v1/push-subscriptions", authenticated(remove_subscription), methods=["DELETE"]),
    Route("/v1/push/public-key", public_key, methods=["GET"]),
    Route("/tocsin-sw.js", service_worker, methods=["GET"]),
]
