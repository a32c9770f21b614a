"""`tocsin send`, `tocsin token` and `tocsin migrate`: one-shot commands for a shell."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from shared.config import ConfigError, Env, JwtSettings
from tocsin import secrets_store
from tocsin.datadir import data_dir

DEFAULT_DISPATCHER_URL = "http://127.0.0.1:8081"
FOLDER_HINT = (
    "or pass --data-dir DIR (or set TOCSIN_DATA_DIR) to the data folder where `tocsin run` "
    "generated it"
)


def _from_folder(environ: Mapping[str, str], name: str, variable: str, problem: str) -> str:
    """The secret `name` from the data folder; else a ConfigError that says where it looked."""
    folder = data_dir(environ)
    found = secrets_store.load(folder)
    if found is None:
        path = secrets_store.secrets_path(folder).absolute()
        raise ConfigError(variable, f"{problem} (looked in {path}: no such file)")
    return found.as_env()[name]


def producer_key(environ: Mapping[str, str]) -> str:
    """--key / TOCSIN_PRODUCER_KEY, else the first TOCSIN_PRODUCER_KEYS, else the data folder's."""
    env = Env(environ)
    key = env.optional("TOCSIN_PRODUCER_KEY") or next(iter(env.items("TOCSIN_PRODUCER_KEYS")), None)
    if key is not None:
        return key
    problem = (
        "no producer key: pass --key KEY or set TOCSIN_PRODUCER_KEY (or TOCSIN_PRODUCER_KEYS), "
        + FOLDER_HINT
    )
    return _from_folder(environ, secrets_store.PRODUCER_KEYS, "TOCSIN_PRODUCER_KEY", problem)


def jwt_secret(environ: Mapping[str, str]) -> str:
    """TOCSIN_JWT_SECRET, else the data folder's (no option: command lines are not secret)."""
    secret = Env(environ).optional(secrets_store.JWT_SECRET)
    if secret is not None:
        return secret
    name = secrets_store.JWT_SECRET
    problem = f"no JWT secret: set it to the gateways' secret, {FOLDER_HINT}"
    return _from_folder(environ, name, name, problem)


def token(environ: Mapping[str, str], user_id: str, ttl: int) -> str:
    from tocsin_client import user_token

    secret = jwt_secret(environ)
    jwt = JwtSettings.from_env(Env({**environ, secrets_store.JWT_SECRET: secret}))
    if jwt.algorithm != "HS256":
        raise ConfigError(
            "TOCSIN_JWT_ALGORITHM",
            f"is {jwt.algorithm}: `tocsin token` mints HS256 tokens only; "
            "with a key pair, your backend signs them with its private key",
        )
    return user_token(user_id, secret, ttl=ttl, audience=jwt.audience, issuer=jwt.issuer)


@dataclass(frozen=True)
class Message:
    users: Sequence[str]
    type: str
    title: str
    body: str = ""
    action_url: str | None = None
    data: dict[str, Any] | None = None
    idempotency_key: str | None = None


def send(environ: Mapping[str, str], message: Message, url: str | None = None) -> list[str]:
    """Lines describing each stored notification; raises tocsin_client.TocsinError."""
    from tocsin_client import Client

    base_url = url or Env(environ).string("TOCSIN_DISPATCHER_URL", DEFAULT_DISPATCHER_URL)
    options: dict[str, Any] = {
        "action_url": message.action_url,
        "data": message.data,
        "idempotency_key": message.idempotency_key,
    }
    with Client(base_url, producer_key(environ)) as client:
        if len(message.users) == 1:
            results = [
                client.send(message.users[0], message.type, message.title, message.body, **options)
            ]
        else:
            results = client.send_many(
                message.users, message.type, message.title, message.body, **options
            )
    return [
        f"{'sent' if r.created else 'already sent'}  user={r.user_id}  seq={r.seq}  id={r.id}"
        for r in results
    ]


def migrate(environ: Mapping[str, str]) -> list[str]:
    """Apply pending migrations to DATABASE_URL, or to the embedded database when unset."""
    from shared.migrate import migrate_url
    from tocsin.datadir import DataDirLock
    from tocsin.embedded import start_postgres

    url = Env(environ).optional("DATABASE_URL")
    if url is not None:
        if not url.startswith(("postgres://", "postgresql://")):
            raise ConfigError("DATABASE_URL", "must be a postgresql:// URL")
        return asyncio.run(migrate_url(url))
    with ExitStack() as cleanup:
        folder = data_dir(environ)
        cleanup.enter_context(DataDirLock(folder))
        postgres = start_postgres(folder)
        cleanup.callback(postgres.stop)
        return asyncio.run(migrate_url(postgres.url))
    raise AssertionError("unreachable")
