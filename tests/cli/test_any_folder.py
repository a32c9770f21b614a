"""`tocsin send` and `tocsin token` from a folder that is not the one `tocsin run` used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.auth import verify_user_token
from shared.config import JwtSettings
from tests.cli.conftest import clean_environ, tocsin
from tests.dispatcher.support import new_user
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port
from tocsin import secrets_store


@pytest.fixture(scope="module")
def node_secrets(tmp_path_factory: pytest.TempPathFactory) -> secrets_store.Secrets:
    """The secrets a `tocsin run` generated in its data folder (somewhere else)."""
    found, _ = secrets_store.load_or_create(tmp_path_factory.mktemp("node") / "data")
    return found


@pytest.fixture(scope="module")
def dispatcher(
    node_secrets: secrets_store.Secrets,
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    port = free_port()
    env = clean_environ(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TOCSIN_PRODUCER_KEYS=node_secrets.producer_key,
        TOCSIN_DISPATCHER_PORT=str(port),
    )
    server = spawn(["dispatcher"], env, port, tmp_path_factory.mktemp("logs"), "/readyz")
    yield server
    server.terminate()


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An empty current folder: no `.data` in it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder.resolve()


def data_folder(found: secrets_store.Secrets) -> str:
    return str(found.path.parent.parent)


@pytest.mark.parametrize("way", ["--data-dir", "TOCSIN_DATA_DIR", "--key", "TOCSIN_PRODUCER_KEY"])
def test_send_finds_the_key(
    way: str, node_secrets: secrets_store.Secrets, dispatcher: ServerProcess, elsewhere: Path
) -> None:
    given = data_folder(node_secrets) if "DATA" in way.upper() else node_secrets.producer_key
    options = [way, given] if way.startswith("--") else []
    env = clean_environ() if options else clean_environ(**{way: given})
    user = new_user()
    args = ["send", "--user", user, "--type", "a:b", "--title", "t", "--url", dispatcher.url]
    done = tocsin(*args, *options, env=env, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert f"sent  user={user}  seq=1" in done.stdout


def test_key_option_wins_over_variable_and_folder(
    node_secrets: secrets_store.Secrets, dispatcher: ServerProcess, elsewhere: Path
) -> None:
    env = clean_environ(
        TOCSIN_PRODUCER_KEY="not-the-configured-key", TOCSIN_DATA_DIR=data_folder(node_secrets)
    )
    args = ["send", "--user", new_user(), "--type", "a:b", "--title", "t", "--url", dispatcher.url]
    refused = tocsin(*args, env=env, cwd=elsewhere)
    assert refused.returncode == 1 and "403 forbidden" in refused.stderr
    sent = tocsin(*args, "--key", node_secrets.producer_key, env=env, cwd=elsewhere)
    assert sent.returncode == 0, sent.stderr


@pytest.mark.parametrize("way", ["--data-dir", "TOCSIN_DATA_DIR"])
def test_token_signed_with_the_folder_secret(
    way: str, node_secrets: secrets_store.Secrets, elsewhere: Path
) -> None:
    folder = data_folder(node_secrets)
    options = [way, folder] if way == "--data-dir" else []
    env = clean_environ() if options else clean_environ(TOCSIN_DATA_DIR=folder)
    done = tocsin("token", "42", *options, env=env, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    settings = JwtSettings("HS256", node_secrets.jwt_secret, None, "tocsin", "tocsin")
    assert verify_user_token(done.stdout.strip(), settings).user_id == "42"


def test_send_without_a_key_says_what_to_pass_and_where_it_looked(elsewhere: Path) -> None:
    done = tocsin(
        "send", "--user", "u", "--type", "a:b", "--title", "t", env=clean_environ(), cwd=elsewhere
    )
    assert done.returncode == 2
    for hint in ("--key", "TOCSIN_PRODUCER_KEY", "--data-dir", "TOCSIN_DATA_DIR", "tocsin run"):
        assert hint in done.stderr
    assert f"looked in {elsewhere / '.data' / 'secrets' / 'tocsin.env'}" in done.stderr
    assert "Traceback" not in done.stderr


def test_token_without_a_secret_says_what_to_set_and_where_it_looked(
    elsewhere: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-data"
    done = tocsin("token", "42", "--data-dir", str(empty), env=clean_environ(), cwd=elsewhere)
    assert done.returncode == 2
    for hint in ("TOCSIN_JWT_SECRET", "--data-dir", "TOCSIN_DATA_DIR", "tocsin run"):
        assert hint in done.stderr
    assert f"looked in {empty / 'secrets' / 'tocsin.env'}" in done.stderr
    assert not empty.exists()  # looking creates nothing
