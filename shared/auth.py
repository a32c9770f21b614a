"""Browser JWT verification and producer API key checks."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

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
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject or len(subject) > USER_ID_MAX_LENGTH:
        raise AuthError("token subject must be a non-empty user id string")
    return UserClaims(user_id=subject, expires_at=float(claims["exp"]))


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
