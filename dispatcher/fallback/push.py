"""Web push: the payload encrypted for one subscription (aes128gcm, RFC 8291, by pywebpush),
a VAPID JWT (RFC 8292, by py-vapid), POSTed to the push service with httpx."""

from __future__ import annotations

import base64
import binascii
import enum
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from py_vapid import Vapid
from pywebpush import WebPusher

from dispatcher.fallback import metrics
from shared import serialization
from shared.config import ConfigError, VapidSettings
from shared.models import Notification
from shared.preferences import PushSubscription

JWT_LIFETIME = 12 * 3600  # seconds; RFC 8292 allows up to 24 h


class Result(enum.Enum):
    ACCEPTED = "accepted"  # 2xx: the push service has it
    GONE = "gone"  # 404/410: the subscription no longer exists; remove it
    REFUSED = "refused"  # another 4xx: this message will never be accepted
    NOT_SENT = "not_sent"  # no connection, 429 or 5xx: nothing accepted, a retry may work
    UNKNOWN = "unknown"  # lost after the request went out


def payload(notification: Notification, icon: str | None = None) -> bytes:
    """What the service worker receives (web/src: the push message)."""
    body: dict[str, Any] = {
        "id": notification.id,
        "title": notification.title,
        "body": notification.body,
        "type": notification.type,
        "actionUrl": notification.action_url,
    }
    if icon is not None:
        body["icon"] = icon
    return serialization.dumps(body)


def _raw(value: str, size: int, name: str) -> None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(name, "must be base64url") from None
    if len(raw) != size:
        raise ConfigError(name, f"must decode to {size} bytes, got {len(raw)}")


@dataclass
class Pusher:
    settings: VapidSettings
    client: httpx.AsyncClient

    def __post_init__(self) -> None:
        _raw(self.settings.private_key, 32, "TOCSIN_VAPID_PRIVATE_KEY")
        _raw(self.settings.public_key, 65, "TOCSIN_VAPID_PUBLIC_KEY")
        self._vapid = Vapid.from_string(self.settings.private_key)
        self._tokens: dict[str, tuple[float, dict[str, str]]] = {}

    def _authorization(self, endpoint: str) -> dict[str, str]:
        """VAPID headers per push-service origin, reused until near their expiry."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and cached[0] > now + 60:
            return cached[1]
        expires = int(now) + JWT_LIFETIME
        claims = {"aud": audience, "exp": expires, "sub": self.settings.subject}
        headers: dict[str, str] = self._vapid.sign(claims)
        self._tokens[audience] = (float(expires), headers)
        return headers

    async def send(self, subscription: PushSubscription, data: bytes) -> Result:
        info = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        body = WebPusher(info).encode(data, "aes128gcm")["body"]
        headers = {
            **self._authorization(subscription.endpoint),
            "TTL": str(self.settings.ttl),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Urgency": "normal",
        }
        started = time.monotonic()
        try:
            response = await self.client.post(
                subscription.endpoint, content=body, headers=headers, timeout=self.settings.timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            return Result.NOT_SENT
        except httpx.HTTPError:
            return Result.UNKNOWN
        finally:
            metrics.SEND_SECONDS.labels(channel="push").observe(time.monotonic() - started)
        return _classify(response.status_code)


def _classify(status: int) -> Result:
    if 200 <= status < 300:
        return Result.ACCEPTED
    if status in (404, 410):
        return Result.GONE
    if status == 429 or status >= 500:
        return Result.NOT_SENT
    return Result.REFUSED
