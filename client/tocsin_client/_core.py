"""What the sync and async clients share: request building, retry decisions, answer parsing."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from tocsin_client.errors import (
    AuthenticationError,
    FieldError,
    PayloadTooLarge,
    ServiceUnavailable,
    TocsinError,
    TransportError,
    ValidationError,
)

PATH = "/v1/notifications"
USER_AGENT = "tocsin-client/0.1"
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_BACKOFF = 5.0  # seconds: the cap on any single wait between attempts


@dataclass(frozen=True)
class SendResult:
    """One recipient's notification; `created` is False when an earlier send already made it."""

    user_id: str
    id: str
    seq: int
    created: bool


@dataclass(frozen=True)
class Config:
    base_url: str
    api_key: str
    timeout: float
    retries: int
    backoff: float

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if self.retries < 0 or self.backoff < 0 or self.timeout <= 0:
            raise ValueError("retries and backoff must be >= 0 and timeout > 0")

    def httpx_options(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url.rstrip("/"),
            "timeout": self.timeout,
            "headers": {"Authorization": f"Bearer {self.api_key}", "User-Agent": USER_AGENT},
        }

    def call(self, payload: dict[str, Any]) -> Call:
        return Call(payload, self.retries, self.backoff)


def payload(
    recipients: dict[str, Any],
    type: str,
    title: str,
    body: str,
    action_url: str | None,
    data: Mapping[str, Any] | None,
    idempotency_key: str | None,
    expires_at: datetime | str | None,
) -> dict[str, Any]:
    """The request body; always with an idempotency key so a retry never duplicates."""
    result: dict[str, Any] = {**recipients, "type": type, "title": title, "body": body}
    result["idempotency_key"] = idempotency_key or str(uuid.uuid4())
    if action_url is not None:
        result["action_url"] = action_url
    if data is not None:
        result["data"] = dict(data)
    if isinstance(expires_at, datetime):
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must carry a time zone")
        expires_at = expires_at.isoformat()
    if expires_at is not None:
        result["expires_at"] = expires_at
    return result


def many(user_ids: Sequence[str]) -> dict[str, Any]:
    if isinstance(user_ids, str):
        raise TypeError("user_ids must be a sequence of user ids, not one string")
    return {"user_ids": list(user_ids)}


class Call:
    """One logical send across its attempts: says whether to retry and how long to wait."""

    def __init__(self, body: dict[str, Any], retries: int, backoff: float) -> None:
        self.content = json.dumps(body, separators=(",", ":")).encode()
        self.headers = {"Content-Type": "application/json"}
        self._retries = retries
        self._backoff = backoff
        self._attempt = 0
        self._last: TocsinError | None = None
        self._server_wait = 0.0

    def answered(self, response: httpx.Response) -> list[SendResult] | None:
        """The results, None to retry, or raises the server's refusal."""
        if response.status_code in RETRY_STATUSES:
            self._last = _refusal(response)
            self._server_wait = _retry_after(response)
            return None
        return parse(response)

    def failed(self, exc: httpx.TransportError) -> None:
        self._last = TransportError(f"{type(exc).__name__}: {exc}")
        self._server_wait = 0.0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; raises the last error when none is left."""
        assert self._last is not None
        if self._attempt >= self._retries:
            raise self._last
        ceiling = min(MAX_BACKOFF, self._backoff * 2.0**self._attempt)
        self._attempt += 1
        # Equal jitter: never less than half the ceiling, spread over the other half.
        jittered = ceiling / 2 + random.uniform(0, ceiling / 2)
        return min(MAX_BACKOFF, max(jittered, self._server_wait))


def parse(response: httpx.Response) -> list[SendResult]:
    """The results of a 200/201, or the typed error for any other answer."""
    if response.status_code not in (200, 201):
        raise _refusal(response)
    try:
        items = response.json()["notifications"]
        return [
            SendResult(str(i["user_id"]), str(i["id"]), int(i["seq"]), bool(i["created"]))
            for i in items
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise TocsinError(f"unexpected answer from the server: {exc!r}") from None


def _refusal(response: httpx.Response) -> TocsinError:
    status = response.status_code
    detail = _error_detail(response)
    message = str(detail.get("message") or response.reason_phrase or "error")
    code = str(detail.get("code") or "")
    if status == 422:
        fields = [
            FieldError(str(f.get("field", "")), str(f.get("message", "")))
            for f in detail.get("fields") or []
            if isinstance(f, dict)
        ]
        return ValidationError(message, fields, status=status)
    kind = {401: AuthenticationError, 403: AuthenticationError, 413: PayloadTooLarge}.get(status)
    if kind is None:
        kind = ServiceUnavailable if status in RETRY_STATUSES else TocsinError
    return kind(message, status=status, code=code or None)


def _error_detail(response: httpx.Response) -> dict[str, Any]:
    try:
        detail = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return detail if isinstance(detail, dict) else {}


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0
