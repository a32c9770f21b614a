"""Hand-made JWTs: signed claims no JWT library would write (NaN, 1e400, lone surrogates)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from tests.conftest import JWT_SECRET


def _part(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def raw_token(payload_json: str, secret: str = JWT_SECRET, alg: str = "HS256") -> str:
    """Sign `payload_json` byte for byte (HS256 or HS512), or leave it unsigned (alg none)."""
    header = _part(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _part(payload_json.encode("utf-8", "surrogatepass"))
    signing_input = f"{header}.{body}".encode()
    if alg == "none":
        return f"{header}.{body}."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(secret.encode(), signing_input, digest).digest()
    return f"{header}.{body}.{_part(signature)}"


def claims(user: str = "victim", **over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": user, "aud": "tocsin", "iss": "tocsin", "iat": now, "exp": now + 600}
    return {k: v for k, v in {**base, **over}.items() if v is not None}


def signed(user: str = "victim", **over: Any) -> str:
    return raw_token(json.dumps(claims(user, **over)))


def with_raw_claim(name: str, literal: str) -> str:
    """Valid claims, but `name` set to a JSON literal as written (`NaN`, `1e400`, ...)."""
    text = json.dumps(claims(**{name: "__RAW__"}))
    return raw_token(text.replace('"__RAW__"', literal))


def bad_tokens() -> dict[str, str]:
    """Every token here must be refused: 401 over REST, close 4001 over the socket."""
    now = int(time.time())
    return {
        "alg none": raw_token(json.dumps(claims()), alg="none"),
        "HS512 when HS256 is configured": raw_token(json.dumps(claims()), alg="HS512"),
        "wrong secret": raw_token(json.dumps(claims()), secret="y" * 40),
        "wrong audience": signed(aud="someone-else"),
        "wrong issuer": signed(iss="evil"),
        "nbf in the future": signed(nbf=now + 3600),
        "exp 10**400": with_raw_claim("exp", "1" + "0" * 400),
        "exp 1e400": with_raw_claim("exp", "1e400"),
        "exp NaN": with_raw_claim("exp", "NaN"),
        "exp Infinity": with_raw_claim("exp", "Infinity"),
        "exp -Infinity": with_raw_claim("exp", "-Infinity"),
        "exp a string": signed(exp="tomorrow"),
        "iat 10**400": with_raw_claim("iat", "1" + "0" * 400),
        "nbf NaN": with_raw_claim("nbf", "NaN"),
        "sub with NUL": with_raw_claim("sub", '"a\\u0000b"'),
        "sub with a lone surrogate": with_raw_claim("sub", '"a\\ud800"'),
        "sub with a newline": signed(user="line\nbreak"),
        "sub too long": signed(user="u" * 129),
        "sub a number": with_raw_claim("sub", "42"),
        "sub empty": signed(user=""),
        "no sub": signed(sub=None),
        "no exp": signed(exp=None),
        "no aud": signed(aud=None),
        "no iss": signed(iss=None),
        "lifetime over TOCSIN_JWT_MAX_TTL": signed(exp=now + 2 * 86400),
        "no iat and exp past TOCSIN_JWT_MAX_TTL": signed(iat=None, exp=now + 7200),
        "payload not an object": raw_token("[1, 2, 3]"),
        "payload not JSON": raw_token("{not json"),
        "two parts": "eyJhbGciOiJIUzI1NiJ9.e30",
    }


def expired() -> str:
    return signed(exp=int(time.time()) - 60)
