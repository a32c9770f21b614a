"""Preferences: the wire form, the errors that name the field, rule lookups and quiet hours."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.preferences import (
    DEFAULT_PREFERENCES,
    Preferences,
    PreferencesError,
    PushSubscription,
)

PARIS = {"start": "22:00", "end": "07:00", "timeZone": "Europe/Paris"}


def _error(obj: Any) -> PreferencesError:
    with pytest.raises(PreferencesError) as info:
        Preferences.from_wire(obj)
    return info.value


def test_round_trip_keeps_rules_and_quiet_hours() -> None:
    wire = {
        "channels": {"email": {"*": True, "message:received": False}, "push": {"*": True}},
        "quietHours": PARIS,
    }
    prefs = Preferences.from_wire(wire)
    assert prefs.to_wire() == wire
    assert Preferences.from_wire(prefs.to_wire()) == prefs


def test_empty_object_is_the_defaults_with_both_channels_listed() -> None:
    prefs = Preferences.from_wire({})
    assert prefs == DEFAULT_PREFERENCES
    assert prefs.to_wire() == {"channels": {"push": {}, "email": {}}, "quietHours": None}


def test_type_overrides_star_which_overrides_default() -> None:
    prefs = Preferences.from_wire({"channels": {"email": {"*": False, "message:received": True}}})
    assert prefs.allows("email", "message:received", default=False) is True
    assert prefs.allows("email", "task:assigned", default=True) is False
    assert prefs.allows("push", "task:assigned", default=True) is True
    assert prefs.allows("push", "task:assigned", default=False) is False


def test_allows_refuses_an_unknown_channel() -> None:
    with pytest.raises(ValueError):
        DEFAULT_PREFERENCES.allows("sms", "task:assigned", default=True)


@pytest.mark.parametrize(
    ("wire", "field"),
    [
        ([], "preferences"),
        ({"channel": {}}, "channel"),
        ({"channels": []}, "channels"),
        ({"channels": {"sms": {"*": True}}}, "channels.sms"),
        ({"channels": {"email": True}}, "channels.email"),
        ({"channels": {"email": {"message:received": 1}}}, "channels.email.message:received"),
        ({"channels": {"email": {"Not A Type": True}}}, "channels.email.Not A Type"),
        ({"quietHours": "22-07"}, "quietHours"),
        ({"quietHours": {**PARIS, "timeZone": "Mars/Olympus"}}, "quietHours.timeZone"),
        ({"quietHours": {**PARIS, "timeZone": "../../etc/passwd"}}, "quietHours.timeZone"),
        ({"quietHours": {**PARIS, "timeZone": "/etc/localtime"}}, "quietHours.timeZone"),
        ({"quietHours": {**PARIS, "timeZone": 1}}, "quietHours.timeZone"),
        ({"quietHours": {**PARIS, "start": "24:00"}}, "quietHours.start"),
        ({"quietHours": {**PARIS, "start": "7:00"}}, "quietHours.start"),
        ({"quietHours": {**PARIS, "end": "07:60"}}, "quietHours.end"),
        ({"quietHours": {**PARIS, "end": "22:00"}}, "quietHours.end"),
        ({"quietHours": {"start": "22:00", "timeZone": "UTC"}}, "quietHours.end"),
        ({"quietHours": {**PARIS, "days": [1]}}, "quietHours.days"),
    ],
)
def test_bad_input_names_the_field(wire: Any, field: str) -> None:
    assert _error(wire).field == field


def test_too_many_types_in_a_channel_is_refused() -> None:
    rules = {f"app:event{i}": True for i in range(101)}
    assert _error({"channels": {"push": rules}}).field == "channels.push"


def _quiet(start: str, end: str, zone: str) -> Preferences:
    return Preferences.from_wire({"quietHours": {"start": start, "end": end, "timeZone": zone}})


def test_quiet_hours_crossing_midnight_end_the_next_morning() -> None:
    prefs = _quiet("22:00", "07:00", "Europe/Paris")  # UTC+1 in January
    evening = datetime(2025, 1, 10, 21, 30, tzinfo=UTC)  # 22:30 in Paris
    assert prefs.quiet_until(evening) == datetime(2025, 1, 11, 6, 0, tzinfo=UTC)
    small_hours = datetime(2025, 1, 11, 2, 0, tzinfo=UTC)  # 03:00 in Paris
    assert prefs.quiet_until(small_hours) == datetime(2025, 1, 11, 6, 0, tzinfo=UTC)


def test_outside_quiet_hours_is_none_and_the_end_itself_is_outside() -> None:
    prefs = _quiet("22:00", "07:00", "Europe/Paris")
    assert prefs.quiet_until(datetime(2025, 1, 10, 12, 0, tzinfo=UTC)) is None
    assert prefs.quiet_until(datetime(2025, 1, 11, 6, 0, tzinfo=UTC)) is None
    assert prefs.quiet_until(datetime(2025, 1, 10, 21, 0, tzinfo=UTC)) is not None  # 22:00


def test_quiet_hours_within_one_day() -> None:
    prefs = _quiet("12:00", "14:00", "America/New_York")  # UTC-4 in July
    assert prefs.quiet_until(datetime(2025, 7, 1, 17, 0, tzinfo=UTC)) == datetime(
        2025, 7, 1, 18, 0, tzinfo=UTC
    )
    assert prefs.quiet_until(datetime(2025, 7, 1, 19, 0, tzinfo=UTC)) is None


def test_quiet_hours_follow_daylight_saving_time() -> None:
    prefs = _quiet("22:00", "07:00", "Europe/Paris")
    # Night of 29-30 March 2025: Paris moves from UTC+1 to UTC+2 at 02:00 local.
    night = datetime(2025, 3, 29, 22, 0, tzinfo=UTC)  # 23:00 local
    assert prefs.quiet_until(night) == datetime(2025, 3, 30, 5, 0, tzinfo=UTC)  # 07:00 UTC+2


def test_no_quiet_hours_means_never_quiet_and_naive_time_is_refused() -> None:
    assert DEFAULT_PREFERENCES.quiet_until(datetime.now(UTC)) is None
    with pytest.raises(ValueError):
        DEFAULT_PREFERENCES.quiet_until(datetime(2025, 1, 1, 12, 0))


def _b64(size: int) -> str:
    return base64.urlsafe_b64encode(bytes(range(size))).decode().rstrip("=")


SUBSCRIPTION = {
    "endpoint": "https://push.example.com/send/abc",
    "expirationTime": None,
    "keys": {"p256dh": _b64(65), "auth": _b64(16)},
}


def test_push_subscription_from_the_browser_json() -> None:
    sub = PushSubscription.from_wire(SUBSCRIPTION, user_agent="x" * 600)
    assert sub.endpoint == SUBSCRIPTION["endpoint"]
    assert sub.p256dh == _b64(65) and sub.auth == _b64(16)
    assert sub.user_agent == "x" * 512


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://push.example.com/x"}, "endpoint"),
        ({"endpoint": "https:///nohost"}, "endpoint"),
        ({"endpoint": "https://push.example.com/a b"}, "endpoint"),
        ({"endpoint": "https://push.example.com/" + "a" * 2048}, "endpoint"),
        ({"endpoint": None}, "endpoint"),
        ({"keys": None}, "keys"),
        ({"keys": {"p256dh": _b64(65)}}, "keys.auth"),
        ({"keys": {"p256dh": _b64(64), "auth": _b64(16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": "not base64!", "auth": _b64(16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": _b64(65), "auth": _b64(17)}}, "keys.auth"),
    ],
)
def test_bad_push_subscription_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PreferencesError) as info:
        PushSubscription.from_wire({**SUBSCRIPTION, **change})
    assert info.value.field == field
