"""Browser JWT verification and producer API key checks."""

from __future__ import annotations

import hmac
import math
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import jwt

from shared.config import JwtSettings


class AuthError(Exception):
    """A credential was refused; `reason` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenExpired(AuthError):
    """The token was valid once; the client should fetch a fresh one."""


@dataclass(frozen=True)
class UserClaims:
    user_id: str
    expires_at: float  # unix seconds


USER_ID_MAX_LENGTH = 128
TIME_CLAIMS = ("exp", "iat", "nbf")
LATEST_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z: past it no datetime can hold the claim


def verify_user_token(token: str, settings: JwtSettings) -> UserClaims:
    """Verify signature, algorithm (pinned, never taken from the token), exp, aud and iss."""
    try:
        claims = jwt.decode(
            token,
            settings.verification_key,
            algorithms=[settings.algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway_seconds,
            options={"require": ["exp", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired("token expired") from None
    except jwt.InvalidAudienceError:
        raise AuthError("token audience not accepted") from None
    except jwt.InvalidIssuerError:
        raise AuthError("token issuer not accepted") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    except (OverflowError, ValueError, TypeError):  # PyJWT's int() of a claim like 1e400
        raise AuthError("invalid token: a time claim is not a usable number") from None
    _check_times(claims, settings)
    return UserClaims(user_id=_subject(claims["sub"]), expires_at=float(claims["exp"]))


def _check_times(claims: dict[str, Any], settings: JwtSettings) -> None:
    """Signed is not sane: every time claim a finite number in range, and a bounded lifetime."""
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if value is None and name != "exp":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AuthError(f"token claim {name} must be a number")
        # Range first: math.isfinite(10**400) raises instead of answering.
        if not (0 <= value <= LATEST_TIME and math.isfinite(value)):
            raise AuthError(f"token claim {name} is out of range")
    if settings.max_ttl is None:
        return
    start = claims.get("iat", time.time())
    if claims["exp"] - start > settings.max_ttl + settings.leeway_seconds:
        raise AuthError(f"token lifetime exceeds {settings.max_ttl:g} s (TOCSIN_JWT_MAX_TTL)")


def user_id_problem(value: Any) -> str | None:
    """Why `value` is not a user id, if it is not: the one rule for token subjects, producer
    recipients and the demo page, so every id a producer can send to is one a token can name."""
    if not isinstance(value, str):
        return "must be a string"
    if not 1 <= len(value) <= USER_ID_MAX_LENGTH:
        return f"must be 1 to {USER_ID_MAX_LENGTH} characters, got {len(value)}"
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        return "must be printable text, without control characters or lone surrogates"
    return None


def _subject(subject: Any) -> str:
    problem = user_id_problem(subject)
    if problem is not None:
        raise AuthError(f"token subject {problem}")
    return subject  # type: ignore[no-any-return]


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def producer_key_ok(presented: str, keys: tuple[str, ...]) -> bool:
    """Constant-time comparison against every configured key."""
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(presented.encode(), key.encode())
    return ok
