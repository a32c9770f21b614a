"""Browser tokens (HS256 JWT) minted with the standard library alone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

USER_ID_MAX_LENGTH = 128


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def user_token(
    user_id: str,
    secret: str,
    ttl: int = 3600,
    audience: str = "tocsin",
    issuer: str = "tocsin",
) -> str:
    """A JWT the gateway accepts for `user_id` (claims sub, iat, exp, aud, iss), valid `ttl` s."""
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= USER_ID_MAX_LENGTH:
        raise ValueError(f"user_id must be a string of 1 to {USER_ID_MAX_LENGTH} characters")
    if not secret:
        raise ValueError("secret must not be empty")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + ttl, "aud": audience, "iss": issuer}
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{_segment(claims)}"
    signature = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
