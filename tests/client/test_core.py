"""Retry decisions and answer mapping, without a network."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest

from tocsin_client import (
    AuthenticationError,
    PayloadTooLarge,
    ServiceUnavailable,
    TocsinError,
    TransportError,
    ValidationError,
)
from tocsin_client._core import MAX_BACKOFF, Call, payload


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def refusal(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


def test_every_payload_has_an_idempotency_key() -> None:
    first = payload({"user_id": "1"}, "a:b", "t", "", None, None, None, None)
    second = payload({"user_id": "1"}, "a:b", "t", "", None, None, None, None)
    assert first["idempotency_key"] and first["idempotency_key"] != second["idempotency_key"]
    given = payload({"user_id": "1"}, "a:b", "t", "", None, None, "mine", None)
    assert given["idempotency_key"] == "mine"


def test_naive_expiry_is_refused_locally() -> None:
    with pytest.raises(ValueError, match="time zone"):
        payload({"user_id": "1"}, "a:b", "t", "", None, None, None, datetime(2099, 1, 1))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, TocsinError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (413, PayloadTooLarge),
        (422, ValidationError),
        (500, TocsinError),
    ],
)
def test_client_errors_are_not_retried(status: int, kind: type[TocsinError]) -> None:
    call = Call({}, retries=3, backoff=0.1)
    with pytest.raises(kind) as caught:
        call.answered(answer(status, refusal("c", "server says no")))
    assert caught.value.status == status and caught.value.message == "server says no"


def test_unavailable_is_retried_with_capped_growing_backoff_then_raised() -> None:
    call = Call({}, retries=6, backoff=1.0)
    delays = []
    for _ in range(6):
        assert call.answered(answer(503, refusal("store_unavailable", "down"))) is None
        delays.append(call.next_delay())
    assert all(0.5 <= d <= MAX_BACKOFF for d in delays)
    assert delays[0] <= 1.0 and delays[-1] >= MAX_BACKOFF / 2
    call.answered(answer(503, refusal("store_unavailable", "down")))
    with pytest.raises(ServiceUnavailable) as caught:
        call.next_delay()
    assert caught.value.code == "store_unavailable" and caught.value.message == "down"


def test_retry_after_is_honoured_within_the_cap() -> None:
    call = Call({}, retries=1, backoff=0.01)
    call.answered(answer(503, refusal("x", "y"), {"Retry-After": "2"}))
    assert call.next_delay() == 2


def test_transport_errors_end_as_transport_error() -> None:
    call = Call({}, retries=1, backoff=0.0)
    call.failed(httpx.ConnectError("refused"))
    assert call.next_delay() == 0
    call.failed(httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError, match="ReadTimeout"):
        call.next_delay()


def test_validation_fields_and_odd_answers() -> None:
    body = {
        "error": {
            "code": "validation_error",
            "message": "bad",
            "fields": [{"field": "title", "message": "empty"}],
        }
    }
    with pytest.raises(ValidationError) as caught:
        Call({}, 0, 0).answered(answer(422, body))
    assert [(f.field, f.message) for f in caught.value.fields] == [("title", "empty")]
    html = httpx.Response(502, content=b"<html>bad gateway</html>")
    assert Call({}, 0, 0).answered(html) is None
    with pytest.raises(TocsinError, match="unexpected answer"):
        Call({}, 0, 0).answered(answer(201, {"nope": 1}))
