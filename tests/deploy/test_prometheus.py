"""Prometheus files checked by promtool, and a real Prometheus scraping a gateway, a
dispatcher and a worker on their metrics listeners, queried through its HTTP API."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.deploy import monitor, stack
from tests.deploy.conftest import Pair
from tests.deploy.stack import Service
from tests.support.processes import ROOT
from tests.support.tabs import Tab

ALERTS = [
    "TocsinGatewayDown",
    "TocsinDispatcherDown",
    "TocsinDeliveryLatencyHigh",
    "TocsinPublishFailures",
    "TocsinSlowConsumerClosesSpiking",
    "TocsinNotReady",
    "TocsinPostgresPoolSaturated",
    "TocsinOutboxStuck",
    "TocsinWorkerDown",
    "TocsinFallbackJobsFailing",
    "TocsinFallbackJobsPilingUp",
]


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((monitor.CONFIG_DIR / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_check_config() -> None:
    result = monitor.promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_check_rules() -> None:
    result = monitor.promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = monitor.promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load((monitor.CONFIG_DIR / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for name in ALERTS:
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name} never seen firing"
        assert any(not case["exp_alerts"] for case in mine), f"{name} never seen quiet"


def github_anchors(markdown: str) -> set[str]:
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
    return slugs | set(re.findall(r'<a (?:id|name)="([^"]+)"', markdown))


def test_alerts_carry_severity_summary_description_and_a_runbook_section() -> None:
    assert sorted(rule["alert"] for rule in rules()) == sorted(ALERTS)
    anchors = github_anchors((ROOT / "docs" / "operations.md").read_text())
    for rule in rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert name.lower() in anchors, f"docs/operations.md has no section {name}"


def frames_received(tab: Tab) -> int:
    """Frames the gateway wrote to this tab: welcomes, batches and other events, live ones."""
    batched = sum(len(e["notifications"]) for e in tab.events if "notifications" in e)
    return len(tab.welcomes) + len(tab.events) + len(tab.arrivals) - batched


async def test_real_prometheus_scrapes_every_service_and_reports_what_the_test_did(
    pair: Pair, worker: Service, tmp_path: Path
) -> None:
    gateway, dispatcher = pair.gateway, pair.dispatcher
    kind = 'type="system:alert"'
    frames_before = stack.sample_value(gateway.metrics(), "tocsin_gateway_frames_sent_total")
    sent_before = stack.sample_value(
        dispatcher.metrics(), "tocsin_notifications_accepted_total", kind
    )
    prometheus = monitor.run(
        tmp_path,
        {
            "tocsin-gateway": [f"127.0.0.1:{gateway.metrics_port}"],
            "tocsin-dispatcher": [f"127.0.0.1:{dispatcher.metrics_port}"],
            "tocsin-worker": [f"127.0.0.1:{worker.metrics_port}"],
        },
    )
    user, ws_url = stack.new_user(), f"ws://127.0.0.1:{gateway.server.port}/v1/ws"
    tabs = [Tab([ws_url], stack.token(user), reconnect=False) for _ in range(3)]
    try:
        for tab in tabs:
            await tab.start()
        async with stack.producer(dispatcher.url) as client:
            seqs = [(await client.send(user, "system:alert", f"p{i}")).seq for i in range(5)]
        for tab in tabs:
            await tab.wait_seq(seqs[-1])
        frames = sum(frames_received(tab) for tab in tabs)
        assert frames >= 3 * (1 + 5)  # a welcome and five notifications per tab at least

        expected = {
            'tocsin_gateway_connections{job="tocsin-gateway"}': 3,
            'tocsin_gateway_frames_sent_total{job="tocsin-gateway"}': frames_before + frames,
            f'tocsin_notifications_accepted_total{{job="tocsin-dispatcher", {kind}}}': (
                sent_before + 5
            ),
            'sum(up{job=~"tocsin-.*"})': 3,
            'count(tocsin_worker_jobs_due{job="tocsin-worker"})': 2,  # email and push
        }
        for expr, value in expected.items():
            await asyncio.to_thread(prometheus.wait_value, expr, value)
        await assert_rules_loaded(prometheus)
    finally:
        await asyncio.gather(*(tab.stop() for tab in tabs))
        prometheus.stop()


async def assert_rules_loaded(prometheus: monitor.Prometheus) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        body = (await http.get(f"{prometheus.url}/api/v1/rules")).json()
    loaded = [rule for group in body["data"]["groups"] for rule in group["rules"]]
    assert sorted(rule["name"] for rule in loaded) == sorted(ALERTS)
    assert all(rule["health"] in ("ok", "unknown") for rule in loaded), loaded
