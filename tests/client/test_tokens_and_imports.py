"""Tokens the gateway accepts, and a client (its own distribution) that imports nothing of
the server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import jwt
import pytest
from packaging.requirements import Requirement

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


IMPORTED = (
    "import json, sys\n"
    "def top(): return {m.split('.')[0] for m in sys.modules}\n"
    "before = top()\n"
    "import httpx\n"
    "with_httpx = top()\n"
    "import tocsin_client\n"
    "print(json.dumps({'file': tocsin_client.__file__, 'httpx': sorted(with_httpx - before),"
    " 'client': sorted(top() - with_httpx)}))\n"
)
SERVER = {"starlette", "asyncpg", "redis", "orjson", "jwt", "prometheus_client", "uvicorn"}
REPOSITORY = {"shared", "dispatcher", "gateway", "tocsin"}


def test_client_is_its_own_distribution_and_imports_only_httpx_and_the_stdlib() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["file"]).is_relative_to(ROOT / "client" / "tocsin_client")
    beyond_httpx = set(found["client"]) - set(sys.stdlib_module_names) - {"tocsin_client"}
    assert beyond_httpx == set(), f"tocsin_client imports {beyond_httpx} besides httpx"
    assert not (set(found["httpx"]) | set(found["client"])) & (SERVER | REPOSITORY)


def test_client_distribution_declares_httpx_only() -> None:
    project = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]
    assert [Requirement(r).name for r in project["dependencies"]] == ["httpx"]
    assert metadata.requires("tocsin-client") == project["dependencies"]
