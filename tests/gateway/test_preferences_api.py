"""The browser's preferences and push subscription routes on a real gateway and PostgreSQL: each
user reaches only their own data (the JWT's sub), bad input is a 422 naming the field."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import JWT_SECRET
from tests.gateway.cluster import ALLOWED_ORIGIN, Cluster, new_user, token
from tests.support.processes import ServerProcess


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _public_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return _b64(key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


VAPID_PUBLIC_KEY = _public_key()


@pytest.fixture(scope="module")
def gateways(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """One gateway with web push configured, one without."""
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "TOCSIN_JWT_SECRET": JWT_SECRET}
    cluster = Cluster(env, tmp_path_factory.mktemp("prefs"))
    cluster.env = {**env, "TOCSIN_VAPID_PUBLIC_KEY": VAPID_PUBLIC_KEY}
    with_push = cluster.start_gateway(0)
    cluster.env = env
    without_push = cluster.start_gateway(1)
    cluster.gateways = [with_push, without_push]
    yield with_push, without_push
    cluster.stop()


@pytest.fixture
async def http(
    gateways: tuple[ServerProcess, ServerProcess],
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateways[0].url, timeout=5) as client:
        yield client


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


PREFS = {
    "channels": {"email": {"*": True, "message:received": False}, "push": {"*": False}},
    "quietHours": {"start": "22:00", "end": "07:00", "timeZone": "Europe/Paris"},
}


def subscription(endpoint: str | None = None) -> dict[str, Any]:
    return {
        "endpoint": endpoint or f"https://push.example.net/wp/{uuid.uuid4().hex}",
        "expirationTime": None,
        "keys": {"p256dh": _public_key(), "auth": _b64(uuid.uuid4().bytes)},
    }


async def test_defaults_then_put_then_get(http: httpx.AsyncClient) -> None:
    user = new_user()
    first = await http.get("/v1/preferences", headers=auth(user))
    assert first.status_code == 200
    assert first.json() == {"channels": {"push": {}, "email": {}}, "quietHours": None}
    put = await http.put("/v1/preferences", json=PREFS, headers=auth(user))
    assert put.status_code == 200 and put.json() == PREFS
    assert (await http.get("/v1/preferences", headers=auth(user))).json() == PREFS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": {"email": {"message:received": "no"}}}, "channels.email.message:received"),
        ({"channels": {"sms": {}}}, "channels.sms"),
        (
            {"quietHours": {"start": "22:00", "end": "07:00", "timeZone": "Nowhere/X"}},
            "quietHours.timeZone",
        ),
        ({"quietHours": {"start": "25:00", "end": "07:00", "timeZone": "UTC"}}, "quietHours.start"),
        ([], "preferences"),
    ],
)
async def test_bad_preferences_are_422_naming_the_field(
    http: httpx.AsyncClient, body: Any, field: str
) -> None:
    user = new_user()
    answer = await http.put("/v1/preferences", json=body, headers=auth(user))
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == field
    assert field in error["message"]
    assert (await http.get("/v1/preferences", headers=auth(user))).json()["quietHours"] is None


async def test_not_json_is_422_on_body(http: httpx.AsyncClient) -> None:
    answer = await http.put("/v1/preferences", content=b"{nope", headers=auth(new_user()))
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "body"


async def test_without_a_valid_token_every_route_is_401(http: httpx.AsyncClient) -> None:
    forged = {"Authorization": "Bearer not-a-jwt"}
    for method, path in [
        ("GET", "/v1/preferences"),
        ("PUT", "/v1/preferences"),
        ("POST", "/v1/push-subscriptions"),
        ("DELETE", "/v1/push-subscriptions"),
    ]:
        for headers in ({}, forged):
            answer = await http.request(method, path, json={}, headers=headers)
            assert answer.status_code == 401, (method, path)
            assert answer.json()["error"]["code"] == "unauthorized"


async def test_one_user_never_sees_or_changes_anothers_preferences(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = new_user(), new_user()
    await http.put("/v1/preferences", json=PREFS, headers=auth(alice))
    bobs = await http.get("/v1/preferences", headers=auth(bob))
    assert bobs.json()["quietHours"] is None  # Bob's own defaults, not Alice's
    await http.put("/v1/preferences", json={"channels": {}}, headers=auth(bob))
    assert (await http.get("/v1/preferences", headers=auth(alice))).json() == PREFS
    # No route takes a user id: a path or query naming Alice reaches nothing of hers.
    assert (await http.get(f"/v1/preferences/{alice}", headers=auth(bob))).status_code == 404
    query = await http.get("/v1/preferences", params={"user": alice}, headers=auth(bob))
    assert query.json()["channels"] == {"push": {}, "email": {}}


async def _stored(database_url: str, endpoint: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(
            "SELECT user_id, p256dh, auth, user_agent FROM tocsin_push_subscriptions"
            " WHERE endpoint = $1",
            endpoint,
        )
    finally:
        await conn.close()


async def test_subscribe_upserts_by_endpoint_and_unsubscribe(
    http: httpx.AsyncClient, database_url: str
) -> None:
    user = new_user()
    sub = subscription()
    headers = {**auth(user), "User-Agent": "TestBrowser/1.0"}
    created = await http.post("/v1/push-subscriptions", json=sub, headers=headers)
    assert created.status_code == 201 and created.json() == {"endpoint": sub["endpoint"]}
    renewed = {**sub, "keys": subscription()["keys"]}
    again = await http.post("/v1/push-subscriptions", json=renewed, headers=headers)
    assert again.status_code == 200
    row = await _stored(database_url, sub["endpoint"])
    assert row is not None and row["user_id"] == user
    assert row["p256dh"] == renewed["keys"]["p256dh"] and row["user_agent"] == "TestBrowser/1.0"

    body = {"endpoint": sub["endpoint"]}
    gone = await http.request("DELETE", "/v1/push-subscriptions", json=body, headers=auth(user))
    assert gone.status_code == 204
    assert await _stored(database_url, sub["endpoint"]) is None
    twice = await http.request("DELETE", "/v1/push-subscriptions", json=body, headers=auth(user))
    assert twice.status_code == 404 and twice.json()["error"]["code"] == "not_found"


async def test_another_user_cannot_delete_a_subscription_but_the_browser_moves_it(
    http: httpx.AsyncClient, database_url: str
) -> None:
    alice, bob = new_user(), new_user()
    sub = subscription()
    await http.post("/v1/push-subscriptions", json=sub, headers=auth(alice))
    body = {"endpoint": sub["endpoint"]}
    refused = await http.request("DELETE", "/v1/push-subscriptions", json=body, headers=auth(bob))
    assert refused.status_code == 404
    row = await _stored(database_url, sub["endpoint"])
    assert row is not None and row["user_id"] == alice
    # The browser holding the endpoint signs in as Bob and registers it: Alice stops owning it.
    moved = await http.post("/v1/push-subscriptions", json=sub, headers=auth(bob))
    assert moved.status_code == 200
    row = await _stored(database_url, sub["endpoint"])
    assert row is not None and row["user_id"] == bob
    stale = await http.request("DELETE", "/v1/push-subscriptions", json=body, headers=auth(alice))
    assert stale.status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://push.example.net/wp/1"}, "endpoint"),
        ({"endpoint": "javascript:alert(1)"}, "endpoint"),
        ({"keys": {"p256dh": "short", "auth": _b64(b"0" * 16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": _public_key(), "auth": "a+b/"}}, "keys.auth"),
    ],
)
async def test_bad_subscriptions_are_422_naming_the_field(
    http: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    answer = await http.post(
        "/v1/push-subscriptions", json={**subscription(), **change}, headers=auth(new_user())
    )
    assert answer.status_code == 422 and answer.json()["error"]["field"] == field


async def test_delete_without_endpoint_is_422(http: httpx.AsyncClient) -> None:
    answer = await http.request(
        "DELETE", "/v1/push-subscriptions", json={}, headers=auth(new_user())
    )
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "endpoint"


async def test_public_key_when_configured_and_404_when_not(
    gateways: tuple[ServerProcess, ServerProcess],
) -> None:
    with_push, without_push = gateways
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.get(with_push.url + "/v1/push/public-key")
        assert answer.status_code == 200 and answer.json() == {"publicKey": VAPID_PUBLIC_KEY}
        missing = await client.get(without_push.url + "/v1/push/public-key")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_configured"


async def test_cors_preflight_allows_put_and_delete(http: httpx.AsyncClient) -> None:
    for method in ("PUT", "DELETE"):
        answer = await http.options(
            "/v1/preferences",
            headers={
                "Origin": ALLOWED_ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert answer.status_code == 200, answer.text
        assert method in answer.headers["access-control-allow-methods"]


async def test_service_worker_is_served_for_the_root_scope(http: httpx.AsyncClient) -> None:
    answer = await http.get("/tocsin-sw.js")
    assert answer.status_code == 200
    assert answer.headers["service-worker-allowed"] == "/"
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "notificationclick" in answer.text


async def test_default_channels_per_type_for_the_panel(http: httpx.AsyncClient) -> None:
    answer = await http.get("/v1/preferences/defaults")
    assert answer.status_code == 200
    body = answer.json()
    assert sorted(body["types"]["message:received"]) == ["email", "push"]
    assert body["types"]["system:alert"] == []
    assert body["custom"] == []  # TOCSIN_FALLBACK_DEFAULT unset: custom types in-app only
