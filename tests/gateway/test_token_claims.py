"""Validly signed tokens whose claims cannot be used as they are: refused with a reason."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import jwt
import pytest

from shared.auth import AuthError, verify_user_token
from shared.config import JwtSettings
from tests.conftest import JWT_SECRET


def signed(**claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": "u1", "aud": "tocsin", "iss": "tocsin", "iat": now, "exp": now + 600}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, JWT_SECRET)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": 10**400}, "exp"),
        ({"exp": float("inf")}, "exp"),
        ({"exp": float("nan")}, "exp"),
        ({"exp": "tomorrow"}, "exp"),
        ({"exp": True}, "exp"),
        ({"exp": 10**12}, "exp"),
        ({"iat": 10**400}, "iat"),
        ({"iat": -5}, "iat"),
        ({"nbf": float("-inf")}, "nbf"),
        ({"sub": "a\x00b"}, "subject"),
        ({"sub": "a\ud800"}, "subject"),
        ({"sub": "line\nbreak"}, "subject"),
        ({"sub": ""}, "subject"),
        ({"sub": "u" * 129}, "subject"),
        ({"sub": 42}, "subject"),
    ],
)
def test_unusable_claims_are_refused_with_a_reason(
    jwt_settings: JwtSettings, claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(AuthError) as caught:
        verify_user_token(signed(**claims), jwt_settings)
    assert reason in caught.value.reason or "invalid token" in caught.value.reason


def test_unicode_subjects_that_are_printable_are_accepted(jwt_settings: JwtSettings) -> None:
    assert verify_user_token(signed(sub="Łucja 😀"), jwt_settings).user_id == "Łucja 😀"


def test_max_ttl_refuses_long_lived_tokens(jwt_settings: JwtSettings) -> None:
    limited = replace(jwt_settings, max_ttl=3600.0)
    now = int(time.time())
    assert verify_user_token(signed(exp=now + 3600), limited).user_id == "u1"
    with pytest.raises(AuthError, match="TOCSIN_JWT_MAX_TTL"):
        verify_user_token(signed(exp=now + 100 * 365 * 86400), limited)
    with pytest.raises(AuthError, match="TOCSIN_JWT_MAX_TTL"):
        verify_user_token(signed(iat=None, exp=now + 7200), limited)
    # Without a limit the same century-long token is accepted, as before.
    assert verify_user_token(signed(exp=now + 100 * 365 * 86400), jwt_settings).user_id == "u1"


def test_max_ttl_is_read_from_the_environment() -> None:
    from shared.config import Env

    base = {"TOCSIN_JWT_SECRET": JWT_SECRET}
    assert JwtSettings.from_env(Env(base)).max_ttl is None
    assert JwtSettings.from_env(Env({**base, "TOCSIN_JWT_MAX_TTL": "900"})).max_ttl == 900.0
