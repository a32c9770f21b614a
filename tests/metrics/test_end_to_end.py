"""Tabs on a real gateway, notifications through a real dispatcher: every metric moves by
exactly what the run did."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

import tocsin_client
from tests.conftest import PRODUCER_KEY
from tests.gateway.cluster import new_user, token
from tests.metrics.conftest import POOL_MAX, Services
from tests.metrics.scrape import Scrape, scrape
from tests.support.tabs import Tab

SENDS = (("task:assigned", "first"), ("task:assigned", "second"), ("invoice:overdue", "custom"))
K = len(SENDS)  # notifications sent, each to both users
ROUTE = {"route": "/v1/notifications", "method": "POST", "status": "201"}


async def scrape_until(url: str, done: Callable[[Scrape], bool], within: float = 10) -> Scrape:
    """The first scrape where `done` holds: the gateway counts after the client saw a frame."""
    deadline = time.monotonic() + within
    while True:
        found = await scrape(url)
        if done(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def delta(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def test_metrics_move_by_exactly_what_the_run_did(services: Services) -> None:
    gw, dp = services.gateway.url, services.dispatcher.url
    alice, bob = new_user(), new_user()
    g0, d0 = await scrape(gw), await scrape(dp)
    # Acks are sent by hand below, so their number is exact (the tab coalesces its own).
    tabs = [
        Tab([services.ws_url], token(user), ack=False, reconnect=False)
        for user in (alice, alice, bob)
    ]
    for tab in tabs:
        await tab.start()
    try:
        g1 = await scrape_until(
            gw, lambda s: delta(s, g0, "tocsin_gateway_frames_sent_total") >= 2 * len(tabs)
        )
        assert g1.value("tocsin_gateway_connections") == 3
        assert g1.value("tocsin_gateway_users") == 2
        assert g1.value("tocsin_gateway_pubsub_channels") == 2 + 1  # users' + the node's own
        assert delta(g1, g0, "tocsin_gateway_frames_sent_total") == 2 * 3  # welcome + batch
        assert delta(g1, g0, "tocsin_gateway_resume_backlog_count") == 3
        assert delta(g1, g0, "tocsin_gateway_resume_backlog_sum") == 0

        async with tocsin_client.AsyncClient(dp, PRODUCER_KEY) as client:
            for kind, title in SENDS:
                await client.send_many([alice, bob], kind, title)
        for tab in tabs:
            await tab.wait_seq(K)
            assert tab.duplicates == 0
            await tab.send({"type": "ack", "seq": K})

        g2 = await scrape_until(
            gw,
            lambda s: (
                delta(s, g0, "tocsin_gateway_acks_total") >= 3
                and delta(s, g0, "tocsin_gateway_delivery_latency_seconds_count") >= 2 * K
            ),
        )
        d2 = await scrape(dp)
    finally:
        for tab in tabs:
            await tab.stop()

    assert delta(g2, g0, "tocsin_gateway_frames_sent_total") == 3 * (2 + K)
    assert delta(g2, g0, "tocsin_gateway_acks_total") == 3
    # One observation per notification per node (alice's two tabs count once); loopback
    # delivery is fast.
    assert delta(g2, g0, "tocsin_gateway_delivery_latency_seconds_count") == 2 * K
    assert 0 < delta(g2, g0, "tocsin_gateway_delivery_latency_seconds_sum") < 2 * K * 2.0
    assert delta(g2, g0, "tocsin_gateway_closes_total", code="4009") == 0
    assert g2.value("tocsin_redis_reconnects_total") == 0

    assert delta(d2, d0, "tocsin_notifications_accepted_total", type="task:assigned") == 4
    assert delta(d2, d0, "tocsin_notifications_accepted_total", type="other") == 2
    assert (
        "tocsin_notifications_accepted_total",
        frozenset({("type", "invoice:overdue")}),
    ) not in (d2.samples)
    assert delta(d2, d0, "tocsin_dispatcher_request_duration_seconds_count", **ROUTE) == K
    assert delta(d2, d0, "tocsin_dispatcher_request_duration_seconds_sum", **ROUTE) > 0
    assert delta(d2, d0, "tocsin_publish_failures_total") == 0
    assert delta(d2, d0, "tocsin_notifications_idempotent_replays_total") == 0

    for found in (g2, d2):
        assert found.value("tocsin_db_pool_max_connections") == POOL_MAX
        in_use = found.value("tocsin_db_pool_connections", state="in_use")
        idle = found.value("tocsin_db_pool_connections", state="idle")
        assert idle >= 1 and in_use >= 0 and in_use + idle <= POOL_MAX
        assert found.value("tocsin_db_pool_waiting") == 0
        assert found.value("tocsin_backend_errors_total", backend="postgres") == 0

    # Sockets gone: the gauges come back down.
    g3 = await scrape_until(gw, lambda s: s.value("tocsin_gateway_connections") == 0)
    assert g3.value("tocsin_gateway_users") == 0
    assert g3.value("tocsin_gateway_pubsub_channels") == 1


async def test_ready_gauge_refreshed_in_background_and_by_readyz(services: Services) -> None:
    for server in (services.gateway, services.dispatcher):
        # Without any /readyz: the background check (every 5 s) has set it.
        found = await scrape_until(server.url, lambda s: s.value("tocsin_ready") == 1, within=8)
        assert found.value("tocsin_ready") == 1
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"{server.url}/readyz")).status_code == 200
        assert (await scrape(server.url)).value("tocsin_ready") == 1


async def test_rejections_and_unknown_routes_have_bounded_labels(services: Services) -> None:
    dp = services.dispatcher.url
    before = await scrape(dp)
    async with httpx.AsyncClient(timeout=5) as http:
        await http.post(f"{dp}/v1/notifications", json={})  # 401: no key
        for path in ("/nope/1", "/nope/2", f"/v1/{new_user()}"):
            assert (await http.get(f"{dp}{path}")).status_code == 404
        assert (await http.get(f"{dp}/v1/notifications")).status_code == 405
    after = await scrape(dp)
    duration = "tocsin_dispatcher_request_duration_seconds_count"
    assert delta(after, before, "tocsin_dispatcher_rejected_total", status="401") == 1
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert delta(after, before, duration, **unmatched) == 3
    not_allowed = {"route": "/v1/notifications", "method": "GET", "status": "405"}
    assert delta(after, before, duration, **not_allowed) == 1
    routes = {dict(labels).get("route") for name, labels in after.samples if name == duration}
    assert routes <= {"/v1/notifications", "/healthz", "/readyz", "/metrics", "unmatched"}
