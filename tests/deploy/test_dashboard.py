"""The Grafana dashboard and the alert rules read only metrics the services export."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.deploy import promql
from tests.deploy.conftest import Pair
from tests.deploy.stack import Service
from tests.support.processes import ROOT

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "tocsin.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PANELS = [
    "Connections",
    "Users",
    "Delivery rate",
    "Delivery latency (commit to socket)",
    "Acks",
    "Closes by code",
    "Publish failures",
    "Backend errors",
    "PostgreSQL pool",
    "Request rate by route and status",
    "Request latency by route (p50 / p99)",
    "Readiness",
    "Outbox pending",
    "Outbox re-published",
    "Reading the store (pub/sub down)",
]
FALLBACK_ROW = "Fallback (web push / email)"


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return list(dashboard()["panels"])


def dashboard_queries() -> list[str]:
    return [t["expr"] for p in panels() for t in p.get("targets", [])]


def alert_queries() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(a_bucket{job="x", le=~"0.5|1"}[5m]))', {"a_bucket"}),
        (
            "histogram_quantile(0.99, sum without (instance) (rate(b_bucket[$__rate_interval])))",
            {"b_bucket"},
        ),
        ("c_total / on (instance) group_left (node) d > 1e3 or e offset 5m", {"c_total", "d", "e"}),
        ('label_replace(up, "dst", "$1", "src", "(.*)") > bool f', {"up", "f"}),
        ("max by (instance) (g:recorded:rate5m) unless ignoring (x) h", {"g:recorded:rate5m", "h"}),
    ],
)
def test_metric_names_skip_functions_labels_strings_and_durations(
    expr: str, names: set[str]
) -> None:
    assert promql.metric_names(expr) == names


def test_exported_series_follow_each_family_type() -> None:
    page = "\n".join(
        [
            "# TYPE x_total counter",
            "# TYPE lat_seconds histogram",
            'lat_seconds_bucket{le="+Inf"} 0.0',
            "# TYPE conns gauge",
            "conns 3.0",
        ]
    )
    series = promql.exported_series(page)
    assert {"x_total", "lat_seconds_bucket", "lat_seconds_sum", "lat_seconds_count"} <= series
    assert "conns" in series
    assert not {"x", "lat_seconds", "conns_total", "x_total_total"} & series


def test_dashboard_has_the_operator_panels_and_the_fallback_row() -> None:
    titles = [p["title"] for p in panels()]
    assert set(PANELS) <= set(titles)
    rows = [p["title"] for p in panels() if p["type"] == "row"]
    assert rows[-1] == FALLBACK_ROW
    fallback = panels()[titles.index(FALLBACK_ROW) + 1 :]
    assert len(fallback) >= 3
    for panel in fallback:  # real charts of the workers' own families, no placeholder
        assert panel["type"] == "timeseries", panel["title"]
        for expr in (t["expr"] for t in panel["targets"]):
            assert all(n.startswith("tocsin_worker_") for n in promql.metric_names(expr)), expr
    assert len({p["id"] for p in panels()}) == len(panels())


def test_panels_fit_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in panels():
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        for x in range(box["x"], box["x"] + box["w"]):
            for y in range(box["y"], box["y"] + box["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[(x, y)] = panel["title"]


def test_provisioning_serves_this_dashboard_from_the_prometheus_datasource() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    used = {json.dumps(p["datasource"]) for p in panels() if "datasource" in p}
    assert used == {json.dumps({"type": "prometheus", "uid": source["uid"]})}
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/tocsin.yaml").read_text())
    (provider,) = providers["providers"]
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert dashboard()["uid"] == "tocsin"


def test_every_query_names_a_metric_a_running_service_exports(pair: Pair, worker: Service) -> None:
    exported = promql.SYNTHETIC | promql.exported_series(pair.gateway.metrics())
    exported |= promql.exported_series(pair.dispatcher.metrics())
    exported |= promql.exported_series(worker.metrics())
    queries = dashboard_queries() + alert_queries()
    assert len(queries) > 30
    unknown = {name: expr for expr in queries for name in promql.metric_names(expr) - exported}
    assert not unknown, unknown
    named = set().union(*(promql.metric_names(expr) for expr in queries))
    # Every service's own families are charted, not only one of them.
    assert {"tocsin_gateway_connections", "tocsin_notifications_accepted_total"} <= named
    assert {"tocsin_outbox_pending", "tocsin_outbox_republished_total"} <= named
    assert {"tocsin_worker_jobs_total", "tocsin_worker_jobs_due"} <= named
    assert "tocsin_gateway_store_polling" in named
