"""Label bounding, the request-duration middleware's labels, and the readiness helpers."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dispatcher import metrics as dispatcher_metrics
from shared import metrics
from shared.types import BUILTIN_TYPES


@pytest.mark.parametrize("kind", BUILTIN_TYPES)
def test_builtin_types_keep_their_label(kind: str) -> None:
    assert metrics.type_label(kind) == kind


@pytest.mark.parametrize("kind", ["invoice:overdue", "task:assigned.v2", "TASK:ASSIGNED", ""])
def test_any_other_type_is_other(kind: str) -> None:
    assert metrics.type_label(kind) == "other"


def test_methods_and_statuses() -> None:
    assert metrics.method_label("POST") == "POST"
    assert metrics.method_label("BREW") == "other"
    assert metrics.status_label(201) == "201"


def test_route_label_is_the_template_or_unmatched() -> None:
    route = Route("/v1/things/{thing_id}", lambda request: Response())
    assert metrics.route_label({"route": route}) == "/v1/things/{thing_id}"
    assert metrics.route_label({}) == "unmatched"


@pytest.mark.parametrize(
    ("checks", "ready"),
    [
        ({"postgres": "ok", "redis": "ok"}, True),
        ({"postgres": True, "redis": True}, True),
        ({"postgres": "down: OSError", "redis": "ok"}, False),
        ({"postgres": True, "redis": False}, False),
        ({"pubsub": "okay"}, False),
    ],
)
def test_all_ok_reads_either_readiness_shape(checks: dict[str, object], ready: bool) -> None:
    assert metrics.all_ok(checks) is ready


async def thing(request: Request) -> Response:
    if request.path_params["thing_id"] == "boom":
        raise RuntimeError("boom")
    return PlainTextResponse("ok")


def duration_count(route: str, method: str, status: str) -> float:
    labels = {"route": route, "method": method, "status": status}
    value = dispatcher_metrics.REGISTRY.get_sample_value(
        "tocsin_dispatcher_request_duration_seconds_count", labels
    )
    return value or 0.0


async def test_middleware_labels_by_template_method_and_status() -> None:
    template = "/v1/things/{thing_id}"
    app = dispatcher_metrics.RequestMetrics(
        Starlette(routes=[Route(template, thing, methods=["POST"])])
    )
    requests = [  # method, path, then the labels expected: route, status
        ("POST", "/v1/things/1", template, "200"),
        ("POST", "/v1/things/2", template, "200"),
        ("GET", "/v1/things/3", template, "405"),
        ("GET", "/elsewhere", "unmatched", "404"),
        ("POST", "/v1/things/boom", template, "500"),
    ]
    series = sorted({(route, method, status) for method, _, route, status in requests})
    before = {labels: duration_count(*labels) for labels in series}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for method, path, _, status in requests:
            assert (await http.request(method, path)).status_code == int(status)
    moved = {labels: duration_count(*labels) - before[labels] for labels in series}
    assert moved == {
        (template, "POST", "200"): 2,
        (template, "GET", "405"): 1,
        ("unmatched", "GET", "404"): 1,
        (template, "POST", "500"): 1,
    }
    assert duration_count("/v1/things/1", "POST", "200") == 0  # never the raw path


async def test_refresh_ready_sets_the_gauge_and_a_failing_check_is_not_ready() -> None:
    registry = CollectorRegistry()
    gauge = metrics.ready_gauge(registry)
    answers = iter([True, False])
    seen: list[float | None] = []
    enough = asyncio.Event()

    async def check() -> bool:
        seen.append(registry.get_sample_value("tocsin_ready"))
        if len(seen) == 4:
            enough.set()
        answer = next(answers, None)
        if answer is None:
            raise ConnectionError("backend gone")
        return answer

    task = asyncio.create_task(metrics.refresh_ready(gauge, check, interval=0.01))
    try:
        async with asyncio.timeout(5):
            await enough.wait()
    finally:
        task.cancel()
    # Each check sees what the previous one set: True -> 1, False -> 0, error -> 0.
    assert seen[1:4] == [1.0, 0.0, 0.0]
