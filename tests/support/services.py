"""Where the tests find PostgreSQL and Redis.

`DATABASE_URL` / `REDIS_URL` when set; else the machine's local servers when they answer;
else embedded ones started from the PyPI wheels (the same ones `make run` uses).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import redis

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_answers(url: str) -> bool:
    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def _redis_answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError:
        return False
    return True


def _resolve(
    variable: str, local: str, answers: Callable[[str], bool], start: Callable[[Path], Any]
) -> str:
    url = os.environ.get(variable) or local
    if os.environ.get(variable) or answers(url):
        return url
    server = start(Path(tempfile.mkdtemp(prefix="tocsin-test-")))
    atexit.register(server.stop)
    return str(server.url)


def database_url() -> str:
    from tocsin.embedded import start_postgres

    return _resolve("DATABASE_URL", LOCAL_DATABASE_URL, _postgres_answers, start_postgres)


def redis_url() -> str:
    from tocsin.embedded import start_redis

    return _resolve("REDIS_URL", LOCAL_REDIS_URL, _redis_answers, start_redis)
