"""Each process exports its own service's families only, on its port or on its own listener."""

from __future__ import annotations

import httpx

from tests.gateway.cluster import new_user, token
from tests.metrics.conftest import Services, Start
from tests.metrics.scrape import DISPATCHER_FAMILIES, GATEWAY_FAMILIES, Scrape, scrape
from tests.support.services import free_port
from tests.support.tabs import Tab


def assert_own_families(found: Scrape, own: set[str]) -> None:
    assert found.tocsin() == own
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= set(
        found.families
    )
    assert all(name.startswith(("tocsin_", "process_", "python_")) for name in found.families)


async def test_each_service_lists_only_its_own_families(services: Services) -> None:
    gateway = await scrape(services.gateway.url)
    dispatcher = await scrape(services.dispatcher.url)
    assert_own_families(gateway, GATEWAY_FAMILIES)
    assert_own_families(dispatcher, DISPATCHER_FAMILIES)
    assert not any(name.startswith("tocsin_gateway_") for name in dispatcher.families)
    # Base units and _total, as Prometheus names them.
    for found in (gateway, dispatcher):
        for name, kind in found.families.items():
            assert name.endswith("_total") == (kind == "counter"), name
            assert "milliseconds" not in name and "_ms" not in name, name


async def test_bounded_series_are_exported_from_zero(services: Services) -> None:
    gateway = await scrape(services.gateway.url)
    dispatcher = await scrape(services.dispatcher.url)
    for found in (gateway, dispatcher):
        for backend in ("postgres", "redis"):
            assert ("tocsin_backend_errors_total", frozenset({("backend", backend)})) in (
                found.samples
            )
    assert ("tocsin_gateway_closes_total", frozenset({("code", "4009")})) in gateway.samples
    types = {
        dict(labels)["type"]
        for name, labels in dispatcher.samples
        if name == "tocsin_notifications_accepted_total"
    }
    assert types == {
        "order:status_changed",
        "message:received",
        "mention:comment",
        "task:assigned",
        "payment:processed",
        "system:alert",
        "other",
    }


async def test_separate_listeners_one_port_per_process(start: Start) -> None:
    """Two gateways and a dispatcher on one machine, each with its own metrics port."""
    ports = [free_port() for _ in range(3)]
    gateways = [start("gateway", TOCSIN_GATEWAY_METRICS_PORT=str(port)) for port in ports[:2]]
    dispatcher = start("dispatcher", TOCSIN_DISPATCHER_METRICS_PORT=str(ports[2]))
    listeners = [f"http://127.0.0.1:{port}" for port in ports]
    found = [await scrape(url) for url in listeners]
    assert_own_families(found[0], GATEWAY_FAMILIES)
    assert_own_families(found[1], GATEWAY_FAMILIES)
    assert_own_families(found[2], DISPATCHER_FAMILIES)
    # Each listener reports its own process: a socket on the first gateway only.
    tab = await Tab([f"ws://127.0.0.1:{gateways[0].port}/v1/ws"], token(new_user())).start()
    try:
        assert (await scrape(listeners[0])).value("tocsin_gateway_connections") == 1
        assert (await scrape(listeners[1])).value("tocsin_gateway_connections") == 0
    finally:
        await tab.stop()
    async with httpx.AsyncClient(timeout=5) as http:
        for server in (*gateways, dispatcher):
            response = await http.get(f"{server.url}/metrics")
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
            assert (await http.get(f"{server.url}/healthz")).status_code == 200
