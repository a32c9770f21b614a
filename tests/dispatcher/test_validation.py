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


def test_data_nested_32_levels_is_accepted() -> None:
    data: dict[str, object] = {"a": [[[{"b": 1}]]]}
    for _ in range(27):
        data = {"k": data}
    validate({"user_id": "1", "type": "a:b", "title": "t", "data": data}, 1, NOW)


@pytest.mark.parametrize("depth", [33, 252, 300, 2000])
def test_data_nested_deeper_is_refused_before_encoding(depth: int) -> None:
    data: object = {}
    for index in range(depth - 1):
        data = {"k": data} if index % 2 else [data]
    with pytest.raises(ValidationFailed) as caught:
        validate({"user_id": "1", "type": "a:b", "title": "t", "data": {"x": data}}, 1, NOW)
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("data", "must be nested at most 32 levels deep")
    ]


@pytest.mark.parametrize(
    "data", [{"k": "\ud800"}, {"\udfff": 1}, {"a": [{"b": "x\x00"}]}, {"a\x00": 1}]
)
def test_unencodable_text_anywhere_in_data_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate({"user_id": "1", "type": "a:b", "title": "t", "data": data}, 1, NOW)
    assert [e.field for e in caught.value.errors] == ["data"]


@pytest.mark.parametrize("field", ["title", "body", "user_id", "idempotency_key"])
def test_lone_surrogate_in_text_fields_is_refused(field: str) -> None:
    payload = {"user_id": "1", "type": "a:b", "title": "t", field: "a\ud83d"}
    with pytest.raises(ValidationFailed) as caught:
        validate(payload, 1, NOW)
    [error] = caught.value.errors
    assert error.field == field and "lone surrogates" in error.message


@pytest.mark.parametrize("kind", ["order:shipped\n", "a:b\n", "\na:b"])
def test_type_with_a_newline_is_refused(kind: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate({"user_id": "1", "type": kind, "title": "t"}, 1, NOW)
    assert [e.field for e in caught.value.errors] == ["type"]


@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+01:00"]
)
def test_expires_at_outside_what_the_store_holds_is_refused(value: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate({"user_id": "1", "type": "a:b", "title": "t", "expires_at": value}, 1, NOW)
    assert [e.field for e in caught.value.errors] == ["expires_at"]


def test_expires_at_is_kept_in_utc() -> None:
    payload = {
        "user_id": "1",
        "type": "a:b",
        "title": "t",
        "expires_at": "2027-01-01T02:00:00+02:00",
    }
    new = validate(payload, 1, NOW).notification
    assert new.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert new.expires_at is not None and new.expires_at.utcoffset() is not None


def test_the_fast_user_id_check_accepts_only_what_the_rule_accepts() -> None:
    from dispatcher.validation import _plain_user_id
    from shared.auth import USER_ID_MAX_LENGTH, user_id_problem

    samples: list[object] = [chr(c) for c in range(0x300)] + ["a" * USER_ID_MAX_LENGTH]
    samples += ["a" * (USER_ID_MAX_LENGTH + 1), "", "a\nb", "x\x7f", "ü", 7, None, True]
    for sample in samples:
        if _plain_user_id(sample):
            assert user_id_problem(sample) is None, repr(sample)
    assert _plain_user_id("user 42:a/b")


@pytest.mark.parametrize("bad", ["a\nb", "", "x" * 300, 5, "\ud800", "tab\there"])
def test_a_bad_id_among_many_is_named(bad: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate({"user_ids": ["ok-1", bad, "ok-2"], "type": "system:alert", "title": "t"}, 100)
    assert [e.field for e in caught.value.errors] == ["user_ids[1]"]
