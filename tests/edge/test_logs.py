"""Logs of real processes: JSON lines with the fixed fields, probe and scrape lines only at
debug, request ids, readable text when asked, and no credential in any line."""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus, WebSocketException

import tocsin_client
from shared import logs
from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.edge.support import json_lines
from tests.support.processes import ROOT, spawn
from tests.support.services import free_port

DB_PASSWORD = "db-pass-" + uuid.uuid4().hex  # the local test server trusts; never printed
PROBES = ("/healthz", "/readyz", "/metrics")
NOTE = {"user_id": "u-logs", "type": "system:alert", "title": "hello"}
TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
    r" (CRITICAL|ERROR|WARNING|INFO|DEBUG|TRACE) +[\w.]+: "
)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def with_password(database_url: str) -> str:
    """The same TCP database with a password in the URL (a trusting server ignores it)."""
    if "host=" in database_url or "@" not in database_url:
        return database_url  # a unix socket: leave it as it is
    scheme, rest = database_url.split("://", 1)
    userinfo, _, host = rest.rpartition("@")
    return f"{scheme}://{userinfo.split(':')[0] or 'postgres'}:{DB_PASSWORD}@{host}"


async def http_traffic(gateway: str, dispatcher: str, good: str, forged: str) -> None:
    """Probes, a traced send, a wrong key, credentials in query strings, a forged token."""
    async with httpx.AsyncClient(timeout=10) as http:
        for base in (gateway, dispatcher):
            for path in PROBES:
                assert (await http.get(base + path)).status_code == 200
        send = dispatcher + "/v1/notifications"
        traced = {**bearer(PRODUCER_KEY), "X-Request-ID": "trace-me-1"}
        assert (await http.post(send, json=NOTE, headers=traced)).status_code == 201
        wrong = bearer(PRODUCER_KEY + "-not")
        assert (await http.post(send, json=NOTE, headers=wrong)).status_code == 403
        query = {"api_key": PRODUCER_KEY}
        assert (await http.post(send, params=query, json=NOTE)).status_code == 401
        feed = gateway + "/v1/notifications"
        assert (await http.get(feed, headers=bearer(good))).status_code == 200
        assert (await http.get(feed, headers=bearer(forged))).status_code == 401
        assert (await http.get(feed, params={"token": good})).status_code == 401


async def socket_traffic(ws_url: str, good: str, forged: str) -> None:
    """A welcomed socket, a refused token (4001), and a refused Origin (403)."""
    async with websockets.connect(ws_url, subprotocols=["tocsin.v1"], open_timeout=5) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": good}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
        await ws.send(json.dumps({"type": "token", "token": forged}))  # refused, socket stays
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "error"
    async with websockets.connect(ws_url, subprotocols=["tocsin.v1"], open_timeout=5) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": forged}))
        with pytest.raises(WebSocketException):
            await asyncio.wait_for(ws.recv(), 10)
    with pytest.raises(InvalidStatus):
        await websockets.connect(ws_url, origin="http://evil.example", open_timeout=5)  # type: ignore[arg-type]


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:6]}...) is in the log"


async def test_service_logs_are_json_lines_without_probes_or_secrets(
    env_base: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **env_base,
        "DATABASE_URL": with_password(env_base["DATABASE_URL"]),
        "TOCSIN_LOG_FORMAT": "json",
        "TOCSIN_LOG_LEVEL": "info",
    }
    ports = free_port(), free_port()
    gateway = spawn(["gateway"], {**env, "TOCSIN_GATEWAY_PORT": str(ports[0])}, ports[0], tmp_path)
    try:
        dispatcher_env = {**env, "TOCSIN_DISPATCHER_PORT": str(ports[1])}
        dispatcher = spawn(["dispatcher"], dispatcher_env, ports[1], tmp_path)
    except BaseException:
        gateway.terminate()
        raise
    good = tocsin_client.user_token("u-logs", JWT_SECRET, ttl=600)
    forged = tocsin_client.user_token("u-logs", "not-the-secret-" * 3, ttl=600)
    try:
        await http_traffic(gateway.url, dispatcher.url, good, forged)
        await socket_traffic(gateway.url.replace("http", "ws") + "/v1/ws", good, forged)
    finally:
        gateway.terminate()
        dispatcher.terminate()
    text = gateway.log() + dispatcher.log()
    lines = json_lines(text)
    assert all(line["time"].endswith("Z") for line in lines)
    assert {line["level"] for line in lines} <= {"info", "warning"}
    access = [line["message"] for line in lines if line["logger"] == "uvicorn.access"]
    assert any("POST /v1/notifications" in message for message in access)
    assert not [m for m in access if any(f"GET {path} " in m for path in PROBES)]
    traced = [line["logger"] for line in lines if line.get("request_id") == "trace-me-1"]
    assert traced == ["uvicorn.access"]
    refused = [line["message"] for line in lines if "TOCSIN_ALLOWED_ORIGINS" in line["message"]]
    assert len(refused) == 1 and "http://evil.example" in refused[0]
    assert_no_secret(text, PRODUCER_KEY, JWT_SECRET, good, forged, DB_PASSWORD)


def test_text_format_and_probe_lines_at_debug(env_base: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {
        **env_base,
        "TOCSIN_LOG_FORMAT": "text",
        "TOCSIN_LOG_LEVEL": "debug",
        "TOCSIN_DISPATCHER_PORT": str(port),
    }
    dispatcher = spawn(["dispatcher"], env, port, tmp_path)
    try:
        httpx.get(dispatcher.url + "/readyz", headers={"X-Request-ID": "probe-7"}, timeout=5)
        httpx.get(dispatcher.url + "/nope", headers=bearer(PRODUCER_KEY), timeout=5)
    finally:
        dispatcher.terminate()
    lines = dispatcher.log().splitlines()
    heads = [line for line in lines if not line.startswith((" ", "Traceback"))]
    assert heads and all(TEXT_LINE.match(line) for line in heads), lines
    probe = [line for line in lines if '"GET /readyz HTTP/1.1" 200' in line]
    assert len(probe) == 1 and " DEBUG " in probe[0]
    assert probe[0].endswith("[request_id=probe-7]")
    assert any('"GET /nope HTTP/1.1" 404' in line and " INFO " in line for line in lines)
    assert_no_secret(dispatcher.log(), PRODUCER_KEY)


def read_secrets(data_dir: Path) -> dict[str, str]:
    text = (data_dir / "secrets" / "tocsin.env").read_text()
    pairs = [line.split("=", 1) for line in text.splitlines() if "=" in line[:40]]
    return {name: value for name, value in pairs if not name.startswith("#")}


async def run_traffic(gateway: str, dispatcher: str, key: str, good: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        sent = await http.post(dispatcher + "/v1/notifications", json=NOTE, headers=bearer(key))
        assert sent.status_code == 201
        feed = gateway + "/v1/notifications"
        assert (await http.get(feed, headers=bearer(good))).status_code == 200
        assert (await http.get(feed, params={"token": good})).status_code == 401


async def test_a_whole_tocsin_run_prints_no_secret(
    env_base: dict[str, str], tmp_path: Path, scratch: Path
) -> None:
    """`tocsin run`, output to a file: embedded PostgreSQL, secrets generated in the folder."""
    ports = free_port(), free_port()
    env = {
        "DATABASE_URL": "",  # empty: the embedded default
        "REDIS_URL": env_base["REDIS_URL"],
        "TOCSIN_DATA_DIR": str(scratch),
        "TOCSIN_PRODUCER_KEYS": "",
        "TOCSIN_PRODUCER_KEY": "",
        "TOCSIN_JWT_SECRET": "",
        "TOCSIN_LOG_FORMAT": "",
        "TOCSIN_GATEWAY_PORT": str(ports[0]),
        "TOCSIN_DISPATCHER_PORT": str(ports[1]),
    }
    node = spawn(["run"], env, ports[0], tmp_path, ready_path="/readyz", timeout=60)
    try:
        # The gateway is ready before the worker; the banner comes once every child is.
        for _ in range(600):  # 60 s at most
            if "Tocsin is running" in node.log():
                break
            await asyncio.sleep(0.1)
        secrets = read_secrets(scratch)
        key, jwt_secret = secrets["TOCSIN_PRODUCER_KEYS"], secrets["TOCSIN_JWT_SECRET"]
        good = tocsin_client.user_token("u-logs", jwt_secret, ttl=600)
        await run_traffic(node.url, f"http://127.0.0.1:{ports[1]}", key, good)
    finally:
        code = node.terminate(timeout=40)
    text = node.log()
    assert code == 0, text
    assert "Tocsin is running" in text  # the banner, without the key: this is not a terminal
    children = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line["logger"] == "uvicorn.access" for line in children)
    assert_no_secret(text, key, jwt_secret, good)


def test_run_children_log_text_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from tocsin.node import Node, plan

    env = {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
        "TOCSIN_GATEWAY_PORT": str(free_port()),
        "TOCSIN_DISPATCHER_PORT": str(free_port()),
    }
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    on_terminal = plan(Node(env=dict(env)))
    assert on_terminal.gateway_env["TOCSIN_LOG_FORMAT"] == "text"
    assert on_terminal.dispatcher_env["TOCSIN_LOG_FORMAT"] == "text"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert plan(Node(env=dict(env))).gateway_env["TOCSIN_LOG_FORMAT"] == "json"
    forced = plan(Node(env={**env, "TOCSIN_LOG_FORMAT": "text"}))
    assert forced.gateway_env["TOCSIN_LOG_FORMAT"] == "text"


@pytest.mark.parametrize(
    ("name", "value"), [("TOCSIN_LOG_FORMAT", "xml"), ("TOCSIN_LOG_LEVEL", "loud")]
)
def test_bad_log_settings_stop_the_service_naming_the_variable(name: str, value: str) -> None:
    env = {
        **os.environ,
        name: value,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
        "REDIS_URL": "redis://127.0.0.1:1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tocsin", "dispatcher"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and name in done.stderr


def test_per_socket_open_lines_are_debug(capsys: pytest.CaptureFixture[str]) -> None:
    """10,000 tabs reconnecting must not write 20,000 info lines; errors still go out."""
    for level, shown in (("info", False), ("debug", True)):
        logging.config.dictConfig(logs.config(level, "text", ()))
        error = logging.getLogger("uvicorn.error")
        error.info("connection open")
        error.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/v1/ws")
        error.info("Application startup complete.")
        out = capsys.readouterr().err
        assert ("connection open" in out) is shown
        assert ("[accepted]" in out) is shown
        assert "Application startup complete." in out
        if shown:
            assert " DEBUG " in out.splitlines()[0]
