"""The validator on its own: what it accepts, what it turns a payload into."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatcher.validation import ValidationFailed, validate

NOW = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def test_minimal_payload_gets_defaults() -> None:
    result = validate({"user_id": "42", "type": "a:b", "title": "t"}, 10, NOW)
    assert result.user_ids == ["42"]
    new = result.notification
    assert (new.body, new.action_url, dict(new.data), new.idempotency_key) == ("", None, {}, None)


def test_full_payload_is_carried_over() -> None:
    payload = {
        "user_ids": ["b", "a", "b"],
        "type": "invoice:overdue.second",
        "title": "Invoice overdue",
        "body": "Pay soon",
        "action_url": "https://billing.example/i/9?x=1",
        "data": {"invoice": 9},
        "idempotency_key": "inv-9",
        "expires_at": "2026-11-25T00:00:00Z",
    }
    result = validate(payload, 10, NOW)
    assert result.user_ids == ["b", "a"]
    new = result.notification
    assert new.expires_at == datetime(2026, 11, 25, tzinfo=UTC)
    assert (new.action_url, new.idempotency_key) == ("https://billing.example/i/9?x=1", "inv-9")


@pytest.mark.parametrize("url", ["/a", "/a/b?c=d#e", "http://x.example", "https://x.example/p"])
def test_good_action_urls(url: str) -> None:
    validate({"user_id": "1", "type": "a:b", "title": "t", "action_url": url}, 1, NOW)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,x",
        "//evil.example",
        "/\\evil.example",
        "https://",
        "ftp://x.example",
        "/a b",
        "/a\nb",
        "",
    ],
)
def test_bad_action_urls(url: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate({"user_id": "1", "type": "a:b", "title": "t", "action_url": url}, 1, NOW)
    assert [e.field for e in caught.value.errors] == ["action_url"]


def test_nul_in_data_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate({"user_id": "1", "type": "a:b", "title": "t", "data": {"k": "\x00"}}, 1, NOW)
    assert [e.field for e in caught.value.errors] == ["data"]


def test_null_required_fields_are_missing() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate({"user_id": "1", "type": None, "title": None}, 1, NOW)
    assert [e.field for e in caught.value.errors] == ["type", "title"]
