"""A user's notification preferences (channel x type, optional quiet hours) and push
subscriptions: the wire form, its validation, and the rule lookups the worker applies.

Wire form (camelCase, the same on the gateway's user API and the producer API):

    {"channels": {"email": {"*": true, "message:received": false}, "push": {"*": true}},
     "quietHours": {"start": "22:00", "end": "07:00", "timeZone": "Europe/Paris"} | null}

`channels[channel][type]` overrides `channels[channel]["*"]`, which overrides the type's default
rule. In-app delivery is always on and is not a channel here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.types import is_valid_type

CHANNELS: tuple[str, ...] = ("push", "email")
ANY_TYPE = "*"
MAX_TYPES_PER_CHANNEL = 100
TIME_ZONE_MAX_LENGTH = 64
_HH_MM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")


class PreferencesError(ValueError):
    """Input that is not valid preferences; `field` is the dotted path of the bad value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    time_zone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def to_wire(self) -> dict[str, str]:
        return {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
            "timeZone": self.time_zone,
        }

    def until(self, now: datetime) -> datetime | None:
        """End of the quiet period `now` falls in (UTC), or None outside quiet hours."""
        local = now.astimezone(self.zone)
        today, clock = local.date(), local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= clock < self.end
            end_day = today
        else:  # crosses midnight, e.g. 22:00-07:00
            inside = clock >= self.start or clock < self.end
            end_day = today + timedelta(days=1) if clock >= self.start else today
        if not inside:
            return None
        return _local(end_day, self.end, self.zone).astimezone(UTC)


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    # A wall time skipped by a DST change resolves (PEP 495, fold=0) to an instant just after
    # the gap, which is the first moment the period is over.
    return datetime.combine(day, clock, tzinfo=zone)


def _default_channels() -> dict[str, dict[str, bool]]:
    return {channel: {} for channel in CHANNELS}


@dataclass(frozen=True)
class Preferences:
    """Frozen in use; the dicts are never mutated after `from_wire` built them."""

    channels: Mapping[str, Mapping[str, bool]] = field(default_factory=_default_channels)
    quiet_hours: QuietHours | None = None

    @classmethod
    def from_wire(cls, obj: Any) -> Preferences:
        if not isinstance(obj, dict):
            raise PreferencesError("preferences", "must be a JSON object")
        unknown = sorted(set(obj) - {"channels", "quietHours"})
        if unknown:
            raise PreferencesError(str(unknown[0]), "is not a preferences field")
        return cls(
            channels=_channels_from_wire(obj.get("channels", {})),
            quiet_hours=_quiet_hours_from_wire(obj.get("quietHours")),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "channels": {channel: dict(self.channels.get(channel, {})) for channel in CHANNELS},
            "quietHours": None if self.quiet_hours is None else self.quiet_hours.to_wire(),
        }

    def allows(self, channel: str, type: str, default: bool) -> bool:
        """Whether the user lets `channel` carry notifications of `type`."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        rules = self.channels.get(channel, {})
        if type in rules:
            return rules[type]
        return rules.get(ANY_TYPE, default)

    def quiet_until(self, now: datetime) -> datetime | None:
        """End (UTC) of the quiet period `now` (timezone-aware) falls in, else None."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return None if self.quiet_hours is None else self.quiet_hours.until(now)


DEFAULT_PREFERENCES = Preferences()


def _channels_from_wire(value: Any) -> dict[str, dict[str, bool]]:
    if not isinstance(value, dict):
        raise PreferencesError("channels", "must be a JSON object")
    channels = _default_channels()
    for channel, rules in value.items():
        where = f"channels.{channel}"
        if channel not in CHANNELS:
            raise PreferencesError(where, f"unknown channel; channels are {', '.join(CHANNELS)}")
        if not isinstance(rules, dict):
            raise PreferencesError(where, "must be a JSON object of type -> true/false")
        if len(rules) > MAX_TYPES_PER_CHANNEL:
            raise PreferencesError(where, f"must hold at most {MAX_TYPES_PER_CHANNEL} types")
        for type_, allowed in rules.items():
            if type_ != ANY_TYPE and not is_valid_type(type_):
                raise PreferencesError(f"{where}.{type_}", 'must be "*" or a notification type')
            if not isinstance(allowed, bool):
                raise PreferencesError(f"{where}.{type_}", "must be true or false")
            channels[channel][type_] = allowed
    return channels


def _quiet_hours_from_wire(value: Any) -> QuietHours | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PreferencesError("quietHours", "must be a JSON object or null")
    unknown = sorted(set(value) - {"start", "end", "timeZone"})
    if unknown:
        raise PreferencesError(f"quietHours.{unknown[0]}", "is not a quiet hours field")
    start = _clock(value.get("start"), "quietHours.start")
    end = _clock(value.get("end"), "quietHours.end")
    if start == end:
        raise PreferencesError("quietHours.end", "must differ from quietHours.start")
    return QuietHours(start, end, _time_zone(value.get("timeZone")))


def _clock(value: Any, where: str) -> time:
    if not isinstance(value, str) or _HH_MM.fullmatch(value) is None:
        raise PreferencesError(where, "must be a time HH:MM (00:00 to 23:59)")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _time_zone(value: Any) -> str:
    problem = time_zone_problem(value)
    if problem is not None:
        raise PreferencesError("quietHours.timeZone", problem)
    return str(value)


def time_zone_problem(value: Any) -> str | None:
    """None for an IANA zone name this server knows, else why not (also the profile's check)."""
    if not isinstance(value, str) or not value or len(value) > TIME_ZONE_MAX_LENGTH:
        return "must be an IANA time zone name such as Europe/Paris"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, e.g. "America"
        return f"unknown time zone {value!r}"
    return None


# --- Web push subscriptions (the browser's PushSubscription.toJSON()) -------------------------

ENDPOINT_MAX_LENGTH = 2048
USER_AGENT_MAX_LENGTH = 512
P256DH_BYTES = 65  # an uncompressed P-256 point
AUTH_BYTES = 16
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


@dataclass(frozen=True)
class PushSubscription:
    endpoint: str
    p256dh: str
    auth: str
    user_agent: str | None = None

    @classmethod
    def from_wire(cls, obj: Any, user_agent: str | None = None) -> PushSubscription:
        """Validate `{"endpoint", "keys": {"p256dh", "auth"}}` (extra members ignored, as
        browsers add `expirationTime`)."""
        if not isinstance(obj, dict):
            raise PreferencesError("subscription", "must be a JSON object")
        endpoint = _endpoint(obj.get("endpoint"))
        keys = obj.get("keys")
        if not isinstance(keys, dict):
            raise PreferencesError("keys", "must be a JSON object with p256dh and auth")
        p256dh = _key(keys.get("p256dh"), "keys.p256dh", P256DH_BYTES)
        auth = _key(keys.get("auth"), "keys.auth", AUTH_BYTES)
        agent = user_agent[:USER_AGENT_MAX_LENGTH] if user_agent else None
        return cls(endpoint, p256dh, auth, agent)


def _endpoint(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > ENDPOINT_MAX_LENGTH:
        raise PreferencesError("endpoint", f"must be a URL of at most {ENDPOINT_MAX_LENGTH} chars")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise PreferencesError("endpoint", "must be a URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise PreferencesError("endpoint", "must be an https URL")
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) > 0x7E for ch in value):
        raise PreferencesError("endpoint", "must be a URL of printable ASCII characters")
    return value


def _key(value: Any, where: str, size: int) -> str:
    if not isinstance(value, str) or _BASE64URL.fullmatch(value) is None:
        raise PreferencesError(where, "must be base64url text")
    try:
        raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise PreferencesError(where, "must be base64url text") from None
    if len(raw) != size:
        raise PreferencesError(where, f"must decode to {size} bytes, not {len(raw)}")
    return value
