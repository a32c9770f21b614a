"""One HTTP edge for both services: every 4xx/5xx in the JSON error shape (Starlette's own
404/405 and static misses included), a crash is a 500 `internal_error`, an unreachable backend
raised from a route is a 503 `unavailable`, request ids, and the health/readiness bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.app import create_app as create_dispatcher
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from shared.config import JwtSettings, StoreSettings
from shared.http import REQUEST_ID_MAX
from tests.dispatcher.support import make_settings, serve
from tests.edge.support import assert_error

APP_ORIGIN = "http://app.example"


async def crash(request: Request) -> Response:
    raise RuntimeError("a bug in a route")


async def redis_gone(request: Request) -> Response:
    raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")


def with_failing_routes(app: Starlette) -> Starlette:
    """The service's own app, plus two routes that fail the ways a real route can."""
    app.router.routes += [Route("/test/crash", crash), Route("/test/redis-gone", redis_gone)]
    return app


@dataclass(frozen=True)
class Service:
    name: str
    url: str


@pytest.fixture(scope="module", params=["gateway", "dispatcher"])
def service(request: pytest.FixtureRequest, database_url: str, redis_url: str) -> Iterator[Service]:
    """Each service's real app on a real socket, started once for the module."""
    name: str = request.param
    store = StoreSettings(database_url, redis_url, pool_min=1, pool_max=4)
    jwt = JwtSettings("HS256", "x" * 32, None, "tocsin", "tocsin")
    if name == "gateway":
        settings = GatewaySettings(store, jwt, allowed_origins=(APP_ORIGIN,), node_id="gw-edge")
        app = create_gateway(settings)
    else:
        app = create_dispatcher(make_settings(database_url, redis_url))
    with serve(with_failing_routes(app)) as url:
        yield Service(name, url)


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
        yield client


async def test_unknown_route_is_404_not_found(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/no/such/route"), 404, "not_found")
    assert_error(await http.post("/no/such/route", content=b"x"), 404, "not_found")


async def test_wrong_method_is_405_with_allow(http: httpx.AsyncClient) -> None:
    response = await http.delete("/healthz")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_crash_is_500_internal_error_without_details(http: httpx.AsyncClient) -> None:
    response = await http.get("/test/crash", headers={"X-Request-ID": "crash-1"})
    error = assert_error(response, 500, "internal_error")
    assert "bug" not in error["message"]
    assert response.headers["x-request-id"] == "crash-1"


async def test_redis_unreachable_in_a_route_is_503_unavailable(http: httpx.AsyncClient) -> None:
    response = await http.get("/test/redis-gone")
    error = assert_error(response, 503, "unavailable")
    assert "redis" in error["message"]
    assert response.headers["retry-after"] == "1"


async def test_request_id_is_kept_sanitized_or_made(http: httpx.AsyncClient) -> None:
    kept = await http.get("/healthz", headers={"X-Request-ID": "req-42.a:b"})
    assert kept.headers["x-request-id"] == "req-42.a:b"
    hostile = await http.get("/healthz", headers={"X-Request-ID": 'a b\t"<c>' + "d" * 500})
    cleaned = hostile.headers["x-request-id"]
    assert cleaned.startswith("abc") and len(cleaned) == REQUEST_ID_MAX
    made = {(await http.get("/nope")).headers["x-request-id"] for _ in range(2)}
    assert len(made) == 2 and all(len(ident) >= 16 for ident in made)


async def test_health_and_readiness_bodies(http: httpx.AsyncClient, service: Service) -> None:
    health = (await http.get("/healthz")).json()
    assert health.keys() == {"status", "service", "node"}
    assert health["status"] == "ok" and health["service"] == service.name and health["node"]
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    expected = (
        {"postgres", "redis", "pubsub"} if service.name == "gateway" else {"postgres", "redis"}
    )
    assert body == {
        "status": "ready",
        "service": service.name,
        "checks": dict.fromkeys(expected, "ok"),
        "draining": False,
    }


@pytest.mark.parametrize("service", ["gateway"], indirect=True)  # browser-facing only
async def test_gateway_static_misses_and_rest_errors_share_the_shape(
    http: httpx.AsyncClient, service: Service
) -> None:
    assert_error(await http.get("/static/no-such-file.js"), 404, "not_found")
    assert_error(await http.post("/static/tocsin.js"), 405, "method_not_allowed")
    assert_error(await http.get("/v1/notifications"), 401, "unauthorized")


@pytest.mark.parametrize("service", ["gateway"], indirect=True)  # browser-facing only
async def test_gateway_cors_refusal_is_json_and_the_request_id_is_readable(
    http: httpx.AsyncClient, service: Service
) -> None:
    preflight = {"Access-Control-Request-Method": "GET", "Origin": "http://evil.example"}
    refused = await http.options("/v1/notifications", headers=preflight)
    assert "origin" in assert_error(refused, 400, "cors_refused")["message"]
    allowed = await http.options("/v1/notifications", headers={**preflight, "Origin": APP_ORIGIN})
    assert allowed.status_code == 200
    simple = await http.get("/healthz", headers={"Origin": APP_ORIGIN})
    assert simple.headers["access-control-allow-origin"] == APP_ORIGIN
    assert simple.headers["access-control-expose-headers"].lower() == "x-request-id"
