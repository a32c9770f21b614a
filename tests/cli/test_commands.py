"""Argument and configuration errors, `tocsin token`, `tocsin send` and `tocsin migrate`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from shared.auth import verify_user_token
from shared.config import JwtSettings
from tests.cli.conftest import clean_environ, tocsin
from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.dispatcher.support import count_rows, new_user
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port
from tocsin import secrets_store
from tocsin.cli import main


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ([], "required: COMMAND"),
        (["nope"], "invalid choice: 'nope'"),
        (["token"], "USER_ID"),
        (["token", "42", "--ttl", "0"], "must be positive"),
        (["send", "--type", "a:b", "--title", "t"], "--user"),
        (["send", "--user", "1", "--type", "a:b", "--title", "t", "--data", "[1]"], "JSON object"),
        (["send", "--user", "1", "--type", "a:b", "--title", "t", "--data", "{x"], "not JSON"),
    ],
)
def test_argument_errors_exit_2_with_usage(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage: tocsin" in err and complaint in err


def test_token_verifies_with_the_configured_secret(
    environ: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    jwt_settings: JwtSettings,
) -> None:
    monkeypatch.setenv("TOCSIN_JWT_SECRET", JWT_SECRET)
    assert main(["token", "user-42", "--ttl", "600"]) == 0
    token = capsys.readouterr().out.strip()
    claims = verify_user_token(token, jwt_settings)
    assert claims.user_id == "user-42"


def test_token_uses_the_data_folder_secret_when_unset(
    environ: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found, _ = secrets_store.load_or_create(environ)
    assert main(["token", "7"]) == 0
    settings = JwtSettings("HS256", found.jwt_secret, None, "tocsin", "tocsin")
    assert verify_user_token(capsys.readouterr().out.strip(), settings).user_id == "7"


def test_token_without_any_secret_names_the_variable(
    environ: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "7"]) == 2
    err = capsys.readouterr().err
    assert "TOCSIN_JWT_SECRET" in err and "tocsin run" in err


def test_dispatcher_without_producer_keys_exits_2_naming_it(database_url: str) -> None:
    env = clean_environ(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:1/0")
    done = tocsin("dispatcher", env=env)
    assert done.returncode == 2
    assert "TOCSIN_PRODUCER_KEYS" in done.stderr
    assert "Traceback" not in done.stderr


def test_dispatcher_without_a_database_says_how_to_get_one() -> None:
    done = tocsin("dispatcher", env=clean_environ(TOCSIN_PRODUCER_KEYS=PRODUCER_KEY))
    assert done.returncode == 2
    assert "DATABASE_URL" in done.stderr and "tocsin run" in done.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOCSIN_LOG_LEVEL", "loud"),
        ("TOCSIN_DISPATCHER_PORT", "eighty"),
        ("TOCSIN_MAX_RECIPIENTS", "0"),
        ("TOCSIN_PRODUCER_KEYS", "short"),
    ],
)
def test_bad_values_are_named(name: str, value: str, env_base: dict[str, str]) -> None:
    done = tocsin("dispatcher", env=clean_environ(**{**env_base, name: value}))
    assert done.returncode == 2
    assert f"configuration error: {name}:" in done.stderr


def test_run_with_external_servers_refuses_to_start_without_secrets(
    env_base: dict[str, str], tmp_path: Path
) -> None:
    env = clean_environ(
        DATABASE_URL=env_base["DATABASE_URL"],
        REDIS_URL=env_base["REDIS_URL"],
        TOCSIN_DATA_DIR=str(tmp_path / "data"),
    )
    done = tocsin("run", env=env)
    assert done.returncode == 2
    assert "TOCSIN_PRODUCER_KEYS" in done.stderr
    assert not (tmp_path / "data").exists()  # no embedded server, no generated secret


def test_migrate_against_database_url(
    environ: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["migrate"]) == 0
    assert "schema is up to date" in capsys.readouterr().out


@pytest.fixture
def dispatcher(env_base: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    server = spawn(
        ["dispatcher"],
        clean_environ(**env_base, TOCSIN_DISPATCHER_PORT=str(port)),
        port,
        tmp_path,
        ready_path="/readyz",
    )
    yield server
    server.terminate()


async def test_send_through_the_client(
    environ: Path,
    dispatcher: ServerProcess,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOCSIN_DISPATCHER_URL", dispatcher.url)
    monkeypatch.setenv("TOCSIN_PRODUCER_KEYS", PRODUCER_KEY)
    a, b = new_user(), new_user()
    argv = ["send", "--user", a, "--user", b, "--type", "task:assigned", "--title", "Review"]
    argv += ["--data", '{"n": 1}', "--idempotency-key", f"cli-{a}"]
    assert main(argv) == 0
    assert main(argv) == 0  # a retry with the same key stores nothing new
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["sent", "sent", "already", "already"]
    assert f"user={a}  seq=1" in out[0] and f"user={b}  seq=1" in out[1]
    rows = await pool.fetch(
        "SELECT user_id, data FROM tocsin_notifications WHERE user_id = ANY($1) ORDER BY seq",
        [a, b],
    )
    assert sorted((r["user_id"], r["data"]["n"]) for r in rows) == sorted([(a, 1), (b, 1)])


async def test_send_refused_exits_1_with_the_server_message(
    environ: Path,
    dispatcher: ServerProcess,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOCSIN_DISPATCHER_URL", dispatcher.url)
    user = new_user()
    monkeypatch.setenv("TOCSIN_PRODUCER_KEY", "not-a-configured-key")
    assert main(["send", "--user", user, "--type", "a:b", "--title", "t"]) == 1
    assert "403 forbidden" in capsys.readouterr().err
    monkeypatch.setenv("TOCSIN_PRODUCER_KEY", PRODUCER_KEY)
    assert main(["send", "--user", user, "--type", "Not A Type", "--title", "t"]) == 1
    err = capsys.readouterr().err
    assert "422 validation_error" in err and "type" in err
    assert await count_rows(pool, user) == 0


def test_send_without_a_key_names_the_variable(
    environ: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "--user", "u", "--type", "a:b", "--title", "t"]) == 2
    assert "TOCSIN_PRODUCER_KEYS" in capsys.readouterr().err
