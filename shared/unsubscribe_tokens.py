"""Signed unsubscribe tokens: who, which type, which channel; HMAC-SHA256, no expiry (a link
in an old email should still work). Anyone holding the link may turn that email off, which
is what List-Unsubscribe (RFC 8058) expects; it grants nothing else."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from shared import serialization

ALL_TYPES = "*"  # a digest's link: every type of email
_VERSION = "1"


class BadToken(Exception):
    """The token is malformed or its signature does not match."""


@dataclass(frozen=True)
class Unsubscribe:
    user_id: str
    type: str  # a notification type, or ALL_TYPES
    channel: str = "email"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadToken("not base64url") from None


def _signature(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{_VERSION}.{body}".encode(), hashlib.sha256).digest()
    return _b64(digest)


def sign(secret: str, what: Unsubscribe) -> str:
    body = _b64(serialization.dumps({"u": what.user_id, "t": what.type, "c": what.channel}))
    return f"{_VERSION}.{body}.{_signature(secret, body)}"


def verify(secret: str, token: str) -> Unsubscribe:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise BadToken("malformed")
    _, body, signature = parts
    if not hmac.compare_digest(signature, _signature(secret, body)):
        raise BadToken("bad signature")
    try:
        claims = serialization.loads(_unb64(body))
    except serialization.SerializationError:
        raise BadToken("bad body") from None
    if not isinstance(claims, dict) or not all(
        isinstance(claims.get(k), str) for k in ("u", "t", "c")
    ):
        raise BadToken("bad claims")
    return Unsubscribe(claims["u"], claims["t"], claims["c"])
