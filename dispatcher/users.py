"""Producer API for one user: preferences (read and set, as the user can through the gateway)
and the profile (where "email if unread" goes). A store outage is the shared 503."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.responses import reject
from dispatcher.routes import authenticate, read_json, runtime
from dispatcher.validation import email_problem
from shared import fallback_jobs, preferences_store, profiles_store
from shared.auth import user_id_problem
from shared.http import JSONResponse
from shared.preferences import Preferences, PreferencesError, time_zone_problem

PREFERENCES_PATH = "/v1/users/{user_id}/preferences"
PROFILE_PATH = "/v1/users/{user_id}/profile"
PROFILE_FIELDS = frozenset({"email", "timeZone", "locale"})
LOCALE_MAX_LENGTH = 35  # a BCP 47 tag, e.g. pt-BR


async def _user(request: Request) -> str | Response:
    """The path's user id once the producer key is accepted, else the 401/403/422 answer."""
    denied = authenticate(
        request.headers.get("authorization"), runtime(request).settings.producer_keys
    )
    if denied is not None:
        return denied
    user_id = request.path_params["user_id"]
    problem = user_id_problem(user_id)
    if problem is not None:
        return reject(
            422, "validation_error", f"user_id: {problem}", fields=[_field("user_id", problem)]
        )
    return str(user_id)


async def _user_and_body(request: Request) -> tuple[str, Any] | Response:
    """The path's user id and the JSON body (PUT routes), else the first refusal."""
    user_id = await _user(request)
    if isinstance(user_id, Response):
        return user_id
    body = await read_json(request)
    return body if isinstance(body, Response) else (user_id, body)


def _field(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message}


async def get_preferences(request: Request) -> Response:
    user_id = await _user(request)
    if isinstance(user_id, Response):
        return user_id
    prefs = await preferences_store.get(runtime(request).pool, user_id)
    return JSONResponse(prefs.to_wire())


async def put_preferences(request: Request) -> Response:
    """Replace the user's preferences; pending jobs on channels now off are cancelled."""
    found = await _user_and_body(request)
    if isinstance(found, Response):
        return found
    user_id, body = found
    try:
        prefs = Preferences.from_wire(body)
    except PreferencesError as exc:
        return reject(422, "validation_error", str(exc), fields=[_field(exc.field, exc.message)])
    await fallback_jobs.save_preferences(runtime(request).pool, user_id, prefs)
    return JSONResponse(prefs.to_wire())


async def get_profile(request: Request) -> Response:
    user_id = await _user(request)
    if isinstance(user_id, Response):
        return user_id
    return JSONResponse((await profiles_store.get(runtime(request).pool, user_id)).to_wire())


async def put_profile(request: Request) -> Response:
    """Replace the profile: {"email", "timeZone", "locale"}, each optional (null clears it)."""
    found = await _user_and_body(request)
    if isinstance(found, Response):
        return found
    user_id, body = found
    profile = _profile(body)
    if isinstance(profile, Response):
        return profile
    await profiles_store.put(runtime(request).pool, user_id, profile)
    return JSONResponse(profile.to_wire())


def _profile(body: Any) -> profiles_store.Profile | Response:
    if not isinstance(body, dict):
        return reject(
            422,
            "validation_error",
            "body must be a JSON object",
            fields=[_field("$", "must be a JSON object")],
        )
    errors = [_field(name, "unknown field") for name in sorted(set(body) - PROFILE_FIELDS)]
    email, zone, locale = body.get("email"), body.get("timeZone"), body.get("locale")
    checks = (
        ("email", email_problem(email)),
        ("timeZone", _zone_problem(zone)),
        ("locale", _locale_problem(locale)),
    )
    errors += [_field(name, problem) for name, problem in checks if problem is not None]
    if errors:
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return reject(422, "validation_error", message, fields=errors)
    return profiles_store.Profile(email=email, time_zone=zone, locale=locale)


def _zone_problem(value: Any) -> str | None:
    return None if value is None else time_zone_problem(value)


def _locale_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 2 <= len(value) <= LOCALE_MAX_LENGTH:
        return "must be a language tag, e.g. en or pt-BR"
    if not all(part.isalnum() for part in value.split("-")):
        return "must be a language tag, e.g. en or pt-BR"
    return None


ROUTES = [
    Route(PREFERENCES_PATH, get_preferences, methods=["GET"]),
    Route(PREFERENCES_PATH, put_preferences, methods=["PUT"]),
    Route(PROFILE_PATH, get_profile, methods=["GET"]),
    Route(PROFILE_PATH, put_profile, methods=["PUT"]),
]
