"""Tokens the gateway accepts, and a client that imports nothing of the server."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt
import pytest

from shared.auth import AuthError, verify_user_token
from shared.config import JwtSettings
from tests.support.processes import ROOT
from tocsin_client import user_token


def test_minted_token_is_accepted_by_the_server(jwt_settings: JwtSettings) -> None:
    assert jwt_settings.secret is not None
    token = user_token("user-42", jwt_settings.secret, ttl=600)
    claims = verify_user_token(token, jwt_settings)
    assert claims.user_id == "user-42"
    assert abs(claims.expires_at - (time.time() + 600)) < 5
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "JWT"}
    raw = jwt.decode(token, options={"verify_signature": False})
    assert set(raw) == {"sub", "iat", "exp", "aud", "iss"} and raw["exp"] - raw["iat"] == 600


def test_wrong_secret_audience_or_expiry_is_refused(jwt_settings: JwtSettings) -> None:
    assert jwt_settings.secret is not None
    for token in (
        user_token("u", "another-secret-that-is-long-enough-xx"),
        user_token("u", jwt_settings.secret, audience="elsewhere"),
        user_token("u", jwt_settings.secret, issuer="someone"),
    ):
        with pytest.raises(AuthError):
            verify_user_token(token, jwt_settings)


@pytest.mark.parametrize("bad", [{"user_id": ""}, {"secret": ""}, {"ttl": 0}])
def test_bad_token_arguments(bad: dict[str, object]) -> None:
    arguments: dict[str, object] = {"user_id": "u", "secret": "s", "ttl": 60, **bad}
    with pytest.raises(ValueError):
        user_token(**arguments)  # type: ignore[arg-type]


def test_client_imports_nothing_of_the_server() -> None:
    script = (
        "import sys, tocsin_client\n"
        "banned = ('starlette', 'asyncpg', 'redis', 'orjson', 'jwt', 'shared',"
        " 'dispatcher', 'gateway', 'prometheus_client')\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in banned))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
