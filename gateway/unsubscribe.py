"""`GET/POST /v1/unsubscribe?token=...`: the link in every fallback email; works without
logging in. GET shows a small page with a button; POST (the button, or a mail client's
RFC 8058 one-click `List-Unsubscribe=One-Click`) turns that type's email off in the user's
preferences and cancels the pending email jobs that no longer apply.

The token is signed with TOCSIN_UNSUBSCRIBE_SECRET (shared/unsubscribe_tokens.py); without
that secret the route answers 404 not_configured.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import asyncpg
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from shared import fallback_jobs, preferences_store
from shared.http import error_response
from shared.preferences import Preferences
from shared.unsubscribe_tokens import ALL_TYPES, BadToken, Unsubscribe, verify

PATH = "/v1/unsubscribe"
TOKEN_MAX_LENGTH = 2048

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{heading}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em;">
<h1 style="font-size: 1.3em;">{heading}</h1>
<p>{message}</p>
{form}
</body></html>
"""


def _page(heading: str, message: str, status: int = 200, action: str | None = None) -> Response:
    form = ""
    if action is not None:
        form = (
            f'<form method="post" action="{html.escape(action)}">'
            '<button type="submit">Stop these emails</button></form>'
        )
    body = _PAGE.format(heading=html.escape(heading), message=html.escape(message), form=form)
    headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
    return HTMLResponse(body, status_code=status, headers=headers)


def _what(target: Unsubscribe) -> str:
    return "all notification emails" if target.type == ALL_TYPES else f"emails about {target.type}"


def email_off(prefs: Preferences, kind: str) -> Preferences:
    """The same preferences with email off for `kind` (ALL_TYPES: every type)."""
    wire = prefs.to_wire()
    rules = wire["channels"].setdefault("email", {})
    if kind == ALL_TYPES:
        rules.clear()  # per-type "on" entries would outrank "*": off
    rules[kind] = False
    return Preferences.from_wire(wire)


def routes(secret: str | None, pool: Callable[[], asyncpg.Pool]) -> list[Route]:
    """The route pair; `pool` returns the gateway's pool (opened in its lifespan)."""

    def target(request: Request) -> Unsubscribe | Response:
        if secret is None:
            return error_response(404, "not_configured", "unsubscribe links are not configured")
        token = request.query_params.get("token", "")
        try:
            if not token or len(token) > TOKEN_MAX_LENGTH:
                raise BadToken("missing or too long")
            return verify(secret, token)
        except BadToken:
            return _page("Link not valid", "This unsubscribe link is damaged or not ours.", 400)

    async def show(request: Request) -> Response:
        found = target(request)
        if isinstance(found, Response):
            return found
        action = f"{PATH}?{request.url.query}"
        return _page("Unsubscribe", f"Stop {_what(found)}?", action=action)

    async def apply(request: Request) -> Response:
        found = target(request)
        if isinstance(found, Response):
            return found
        db = pool()
        prefs = email_off(await preferences_store.get(db, found.user_id), found.type)
        await fallback_jobs.save_preferences(db, found.user_id, prefs)
        return _page("Unsubscribed", f"You will get no more {_what(found)}.")

    return [Route(PATH, show, methods=["GET"]), Route(PATH, apply, methods=["POST"])]
