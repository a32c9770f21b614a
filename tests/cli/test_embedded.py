"""The embedded PostgreSQL and Redis really start, keep data, and stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import redis

from tests.support.services import free_port
from tocsin.embedded import is_running, start_postgres, start_redis, wait_gone


async def query(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_postgres_starts_keeps_data_and_stops(scratch: Path) -> None:
    server = start_postgres(scratch)
    try:
        assert server.url.startswith("postgresql://") and server.pid is not None
        asyncio.run(query(server.url, "CREATE TABLE kept AS SELECT 42 AS answer"))
    finally:
        server.stop()
    server.stop()  # idempotent
    assert wait_gone(server.pid, 10)
    again = start_postgres(scratch)
    try:
        assert again.pid != server.pid
        assert asyncio.run(query(again.url, "SELECT answer FROM kept")) == 42
    finally:
        again.stop()
    assert again.pid is not None and wait_gone(again.pid, 10)


def test_redis_starts_on_a_chosen_port_and_stops(tmp_path: Path) -> None:
    port = free_port()
    server = start_redis(tmp_path, port)
    try:
        assert server.url == f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        assert client.config_get("save") == {"save": ""}  # Redis holds nothing durable
        client.close()
    finally:
        server.stop()
    server.stop()
    assert server.pid is not None and not is_running(server.pid)


def test_redis_left_behind_on_the_folder_is_stopped(tmp_path: Path) -> None:
    orphan = start_redis(tmp_path)  # as if its supervisor had been killed
    fresh = start_redis(tmp_path)
    try:
        assert orphan.pid is not None and wait_gone(orphan.pid, 10)
        client = redis.Redis.from_url(fresh.url)
        assert client.ping()
        client.close()
    finally:
        orphan.stop()
        fresh.stop()
