"""Health, readiness, metrics, and an OpenAPI document that matches what the service does."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from dispatcher import validation
from dispatcher.app import app_from_env
from dispatcher.routes import ROUTES
from shared.config import ConfigError
from tests.dispatcher.support import MAX_BODY_BYTES, MAX_RECIPIENTS, new_user


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    health = (await http.get("/healthz")).json()
    assert health.keys() == {"status", "service", "node"}
    assert (health["status"], health["service"]) == ("ok", "dispatcher")
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "service": "dispatcher",
        "checks": {"postgres": "ok", "redis": "ok"},
        "draining": False,
    }


async def test_metrics_count_accepted_and_rejected(http: httpx.AsyncClient) -> None:
    body = {"user_id": new_user(), "type": "payment:processed", "title": "Paid"}
    await http.post("/v1/notifications", json=body)
    await http.post("/v1/notifications", json={**body, "title": ""})
    text = (await http.get("/metrics")).text
    assert 'tocsin_notifications_accepted_total{type="payment:processed"}' in text
    assert 'tocsin_dispatcher_rejected_total{status="422"}' in text


async def test_openapi_describes_every_route_and_the_real_limits(
    http: httpx.AsyncClient,
) -> None:
    doc = (await http.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    served = {
        (r.path, m.lower()) for r in ROUTES if isinstance(r, Route) for m in r.methods or ()
    } - {(r.path, "head") for r in ROUTES if isinstance(r, Route)}
    assert documented == served
    schema = doc["components"]["schemas"]["NotificationRequest"]
    props = schema["properties"]
    assert set(props) == validation.KNOWN_FIELDS
    assert schema["additionalProperties"] is False
    assert props["user_ids"]["maxItems"] == MAX_RECIPIENTS
    assert props["title"]["maxLength"] == validation.TITLE_MAX_LENGTH
    assert props["body"]["maxLength"] == validation.BODY_MAX_LENGTH
    codes = set(doc["paths"]["/v1/notifications"]["post"]["responses"])
    assert codes == {"200", "201", "400", "401", "403", "413", "422", "500", "503"}
    assert (
        str(MAX_BODY_BYTES)
        in doc["paths"]["/v1/notifications"]["post"]["responses"]["413"]["description"]
    )


def test_app_from_env_reads_the_dispatcher_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1:1/db")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("TOCSIN_PRODUCER_KEYS", "k" * 16)
    assert isinstance(app_from_env(), Starlette)
    monkeypatch.setenv("TOCSIN_PRODUCER_KEYS", "short")
    with pytest.raises(ConfigError, match="TOCSIN_PRODUCER_KEYS"):
        app_from_env()
