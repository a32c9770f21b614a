"""Every refused request gets its status, names its bad fields, and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.dispatcher.support import MAX_BODY_BYTES, MAX_RECIPIENTS, count_rows, new_user

Mutation = Callable[[dict[str, Any], str], dict[str, Any]]


def good(user: str) -> dict[str, Any]:
    return {"user_id": user, "type": "message:received", "title": "Hi", "body": "Hello"}


def _set(**changes: Any) -> Mutation:
    return lambda body, user: {**body, **changes}


def _without(*names: str) -> Mutation:
    return lambda body, user: {k: v for k, v in body.items() if k not in names}


def _nested(depth: int) -> dict[str, Any]:
    """{"k": {"k": ... {}}} with `depth` objects in all."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def _past() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


BAD_FIELDS: list[tuple[str, Mutation, str]] = [
    ("type-pattern", _set(type="Order Shipped"), "type"),
    ("type-missing-event", _set(type="order:"), "type"),
    ("type-not-string", _set(type=7), "type"),
    ("title-empty", _set(title=""), "title"),
    ("title-blank", _set(title="   "), "title"),
    ("title-too-long", _set(title="x" * 201), "title"),
    ("title-missing", _without("title"), "title"),
    ("body-too-long", _set(body="x" * 5001), "body"),
    ("body-nul", _set(body="a\x00b"), "body"),
    ("action-url-javascript", _set(action_url="javascript:alert(1)"), "action_url"),
    ("action-url-protocol-relative", _set(action_url="//evil.example/x"), "action_url"),
    ("action-url-relative-no-slash", _set(action_url="orders/7"), "action_url"),
    ("action-url-too-long", _set(action_url="/" + "a" * 2048), "action_url"),
    ("data-not-object", _set(data=[1, 2]), "data"),
    ("data-oversize", _set(data={"blob": "x" * 16 * 1024}), "data"),
    ("data-too-deep", lambda b, u: {**b, "data": _nested(33)}, "data"),
    ("data-far-too-deep", lambda b, u: {**b, "data": _nested(300)}, "data"),
    ("data-nul-in-key", _set(data={"a\x00": 1}), "data"),
    ("type-trailing-newline", _set(type="order:shipped\n"), "type"),
    (
        "expires-at-past-year-9999-in-utc",
        _set(expires_at="9999-12-31T23:59:59-23:59"),
        "expires_at",
    ),
    ("both-recipients", lambda b, u: {**b, "user_ids": [u]}, "user_ids"),
    ("no-recipient", _without("user_id"), "user_id"),
    ("user-id-empty", _set(user_id=""), "user_id"),
    ("user-id-too-long", _set(user_id="u" * 129), "user_id"),
    # No token can name it (shared.auth.user_id_problem), so nobody could ever read it.
    ("user-id-control-character", _set(user_id="a\nb"), "user_id"),
    ("user-ids-empty", lambda b, u: {**_without("user_id")(b, u), "user_ids": []}, "user_ids"),
    (
        "too-many-user-ids",
        lambda b, u: {
            **_without("user_id")(b, u),
            "user_ids": [f"{u}-{i}" for i in range(MAX_RECIPIENTS + 1)],
        },
        "user_ids",
    ),
    (
        "user-ids-bad-item",
        lambda b, u: {**_without("user_id")(b, u), "user_ids": [u, 5]},
        "user_ids[1]",
    ),
    ("expires-at-garbage", _set(expires_at="tomorrow"), "expires_at"),
    ("expires-at-no-timezone", _set(expires_at="2099-01-01T00:00:00"), "expires_at"),
    ("expires-at-past", lambda b, u: {**b, "expires_at": _past()}, "expires_at"),
    ("idempotency-key-too-long", _set(idempotency_key="k" * 256), "idempotency_key"),
    ("unknown-field", _set(priority="high"), "priority"),
]


@pytest.fixture
async def user(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A fresh user; after the test, asserts that nothing was stored for them."""
    name = new_user()
    yield name
    assert await count_rows(pool, name) == 0
    like = await pool.fetchval(
        "SELECT count(*) FROM tocsin_notifications WHERE user_id LIKE $1", name + "%"
    )
    assert like == 0


@pytest.mark.parametrize(
    ("mutate", "field"), [(m, f) for _, m, f in BAD_FIELDS], ids=[case for case, _, _ in BAD_FIELDS]
)
async def test_bad_field_is_named(
    http: httpx.AsyncClient, user: str, mutate: Mutation, field: str
) -> None:
    response = await http.post("/v1/notifications", json=mutate(good(user), user))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]]


async def test_every_bad_field_is_named_at_once(http: httpx.AsyncClient, user: str) -> None:
    body = {**good(user), "type": "nope", "title": "", "data": "x", "extra": 1}
    response = await http.post("/v1/notifications", json=body)
    assert response.status_code == 422
    named = {f["field"] for f in response.json()["error"]["fields"]}
    assert named == {"type", "title", "data", "extra"}


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe", b"[1, 2"])
async def test_non_json_is_400(http: httpx.AsyncClient, user: str, content: bytes) -> None:
    response = await http.post(
        "/v1/notifications", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_json_that_is_not_an_object_is_422(http: httpx.AsyncClient, user: str) -> None:
    response = await http.post("/v1/notifications", json=[good(user)])
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "$"


async def test_declared_oversize_body_is_413(http: httpx.AsyncClient, user: str) -> None:
    body = {**good(user), "body": "x" * MAX_BODY_BYTES}
    response = await http.post("/v1/notifications", json=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_streamed_oversize_body_is_413(http: httpx.AsyncClient, user: str) -> None:
    chunk = b" " * 8192

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"user_id": "' + user.encode() + b'", "body": "'
        for _ in range(4 * MAX_BODY_BYTES // len(chunk)):
            yield chunk

    response = await http.post("/v1/notifications", content=chunks())
    assert response.status_code == 413
    assert "content-length" not in response.request.headers


async def test_missing_key_is_401(http: httpx.AsyncClient, user: str) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Basic abc"}):
        response = await http.post("/v1/notifications", json=good(user), headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_wrong_key_is_403(http: httpx.AsyncClient, user: str) -> None:
    headers = {"Authorization": "Bearer not-the-producer-key"}
    response = await http.post("/v1/notifications", json=good(user), headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_unknown_route_and_method_answer_json(http: httpx.AsyncClient, user: str) -> None:
    missing = await http.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = await http.get("/v1/notifications")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
