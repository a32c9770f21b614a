"""The gateway's REST API with generated paths, queries, bodies and headers, as an
authenticated user who has notifications: never a 5xx, every error in the JSON shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import PRODUCER_KEY
from tests.fuzz.strategies import json_value, text
from tests.gateway.cluster import Cluster, new_user, token

EXAMPLES = 200
KNOWN_PARAMS = st.sampled_from(["cursor", "limit", "unread", "type", "upToSeq"])
segments = st.one_of(
    st.sampled_from(["read", "unread", "archive", "read-all", "seen-all", "unread-count"]),
    st.sampled_from(["..", "%00", "%2F", "%ZZ", "00000000-0000-4000-8000-000000000000"]),
    st.uuids().map(str),
    text.map(lambda t: t.replace("/", "").replace("?", "").replace("#", "")),
)
requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
        "path": st.one_of(
            st.sampled_from(["/v1/notifications", "/v1/notifications/read-all"]),
            st.lists(segments, max_size=3).map(lambda s: "/v1/notifications/" + "/".join(s)),
        ),
        "params": st.dictionaries(st.one_of(KNOWN_PARAMS, text), text, max_size=4),
        "body": st.one_of(st.none(), json_value, st.binary(max_size=64)),
    }
)

param_values = st.one_of(text, st.integers().map(str), st.sampled_from(["true", "a:b,c:d", ""]))
feed_requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST"]),
        "path": st.sampled_from(["/v1/notifications", "/v1/notifications/read-all"]),
        "params": st.dictionaries(KNOWN_PARAMS, param_values, max_size=4),
        "body": st.one_of(st.none(), st.dictionaries(KNOWN_PARAMS, json_value, max_size=2)),
    }
)


@pytest.fixture(scope="module")
def user_client(cluster: Cluster) -> Iterator[httpx.Client]:
    user = new_user()
    with httpx.Client(base_url=cluster.gateways[0].url, timeout=10) as http:
        assert cluster.dispatcher is not None
        with httpx.Client(base_url=cluster.dispatcher.url, timeout=10) as producer:
            for i in range(5):
                note = {"user_id": user, "type": "fuzz:rest", "title": f"n{i}"}
                headers = {"Authorization": f"Bearer {PRODUCER_KEY}"}
                assert producer.post("/v1/notifications", json=note, headers=headers).is_success
        http.headers["Authorization"] = f"Bearer {token(user, ttl=3600)}"
        yield http


def quoted(value: str) -> str:
    # Lone surrogates go out as the bytes a careless client would send; "%00" stays as typed.
    return quote(value.encode("utf-8", "surrogatepass"), safe="%:@-._~")


def send(http: httpx.Client, request: dict[str, Any]) -> httpx.Response:
    body = request["body"]
    content = body if isinstance(body, bytes) else None
    if body is not None and not isinstance(body, bytes):
        content = json.dumps(body).encode()  # ASCII escapes, surrogates included
    path = "/".join(quoted(part) for part in request["path"].rstrip("/").split("/"))
    query = "&".join(f"{quoted(k)}={quoted(v)}" for k, v in request["params"].items())
    url = path + (f"?{query}" if query else "")
    return http.request(request["method"], url, content=content)


@settings(
    settings.get_profile("tocsin-fuzz"),
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=st.one_of(requests, feed_requests))
def test_generated_requests_never_give_a_5xx(
    user_client: httpx.Client, request: dict[str, Any]
) -> None:
    answer = send(user_client, request)
    event(f"status {answer.status_code}")
    assert answer.status_code < 500, (request, answer.text)
    if answer.status_code >= 400 and request["method"] != "HEAD":
        error = answer.json()["error"]
        assert error["code"] and isinstance(error["message"], str)
