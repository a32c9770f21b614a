"""The outbox: every committed notification reaches its channel, whatever happened to the
publish that followed its commit (lost to a blackholed link, never made by a dispatcher that
died). Real PostgreSQL and Redis; tabs on a real gateway process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import replace
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from dispatcher.app import create_app
from dispatcher.metrics import REGISTRY
from shared import envelope, keys, serialization
from shared.config import DispatcherSettings
from shared.models import NewNotification
from shared.repository import Repository
from tests.dispatcher.support import AUTH, make_settings, new_user, serve
from tests.gateway.cluster import Cluster, server_env, token
from tests.support.processes import ServerProcess
from tests.support.tabs import Tab
from tests.support.tcpproxy import tcp_proxy

logger = logging.getLogger("tests.outbox")

BOUND = 5.0  # seconds: the 2 s target plus slack for a shared test machine


@pytest.fixture(scope="module")
def gateway(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One gateway process reading Redis directly; the dispatchers under test run in-process."""
    env = server_env(database_url, redis_url)
    server = Cluster(env, tmp_path_factory.mktemp("outbox")).start_gateway(0)
    yield server
    server.terminate()


@pytest.fixture
def settings(database_url: str, redis_url: str) -> DispatcherSettings:
    return make_settings(database_url, redis_url)


async def open_tabs(gateway: ServerProcess, users: list[str]) -> list[Tab]:
    url = f"ws://127.0.0.1:{gateway.port}/v1/ws"
    return list(await asyncio.gather(*(Tab([url], token(u)).start() for u in users)))


async def stop_tabs(tabs: list[Tab]) -> None:
    await asyncio.gather(*(tab.stop() for tab in tabs))


async def insert_unpublished(repo: Repository, users: list[str], count: int) -> None:
    """What a dispatcher killed between its commit and its publish leaves behind."""
    for i in range(count):
        await repo.insert(NewNotification(type="system:alert", title=f"n{i}", body=""), users)


async def unpublished(pool: asyncpg.Pool, users: list[str]) -> int:
    value = await pool.fetchval(
        "SELECT count(*) FROM tocsin_notifications"
        " WHERE user_id = ANY($1::text[]) AND published_at IS NULL",
        users,
    )
    return int(value)


async def wait_published(pool: asyncpg.Pool, users: list[str], within: float = BOUND) -> None:
    async with asyncio.timeout(within):
        while await unpublished(pool, users):  # noqa: ASYNC110 (polling the store)
            await asyncio.sleep(0.05)


def republished() -> float:
    return REGISTRY.get_sample_value("tocsin_outbox_republished_total") or 0.0


def through(redis_url: str, port: int) -> str:
    """The same Redis database reached through a proxy on `port`."""
    return f"redis://127.0.0.1:{port}{urlsplit(redis_url).path}"


async def test_publishes_lost_to_a_blackholed_link_arrive_after_it_heals(
    gateway: ServerProcess, settings: DispatcherSettings, redis_url: str, pool: asyncpg.Pool
) -> None:
    users, sends = [new_user() for _ in range(20)], 3
    target = urlsplit(redis_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        proxied = replace(
            settings, store=replace(settings.store, redis_url=through(redis_url, proxy.port))
        )
        tabs = await open_tabs(gateway, users)
        try:
            with serve(create_app(proxied)) as url:
                async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as http:
                    proxy.blackhole()
                    body = {"user_ids": users, "type": "system:alert", "title": "t"}
                    answers = await asyncio.gather(
                        *(http.post("/v1/notifications", json=body) for _ in range(sends))
                    )
                    assert [a.status_code for a in answers] == [201] * sends
                    await asyncio.sleep(2)  # the outbox has tried, and failed, meanwhile
                    assert all(not tab.notifications for tab in tabs)
                    assert await unpublished(pool, users) == len(users) * sends
                    proxy.heal()
                    healed = time.monotonic()
                    for tab in tabs:
                        await tab.wait_seq(sends, within=BOUND)
                    held = time.monotonic() - healed
                    logger.warning("blackhole healed: every tab held all in %.2f s", held)
                    await wait_published(pool, users)
        finally:
            await stop_tabs(tabs)
    assert all(sorted(tab.notifications) == list(range(1, sends + 1)) for tab in tabs)


async def test_rows_committed_but_never_published_reach_their_tabs(
    gateway: ServerProcess, settings: DispatcherSettings, repo: Repository, pool: asyncpg.Pool
) -> None:
    users = [new_user() for _ in range(5)]
    tabs = await open_tabs(gateway, users)
    try:
        with serve(create_app(settings)):
            before = republished()
            await insert_unpublished(repo, users, 3)
            for tab in tabs:
                await tab.wait_seq(3, within=BOUND)
            await wait_published(pool, users)
            assert republished() - before >= len(users) * 3
    finally:
        await stop_tabs(tabs)
    assert all(tab.duplicates == 0 for tab in tabs)


async def watch(
    redis: aioredis.Redis, users: list[str], expected: int, settle: float = 1.0
) -> dict[tuple[str, int], int]:
    """How many frames each (user, seq) got on its channel: listens until `expected` frames
    came, then `settle` seconds more for any second copy."""
    user_of = {keys.user_channel(u).encode(): u for u in users}
    seen: dict[tuple[str, int], int] = {}
    pubsub = redis.pubsub()
    await pubsub.subscribe(*user_of)
    settled: float | None = None
    try:
        while settled is None or time.monotonic() < settled:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                key = (user_of[message["channel"]], envelope.parse(message["data"]).seq)
                seen[key] = seen.get(key, 0) + 1
            if settled is None and sum(seen.values()) >= expected:
                settled = time.monotonic() + settle
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    return seen


async def test_two_dispatchers_never_publish_one_row_twice(
    gateway: ServerProcess,
    settings: DispatcherSettings,
    repo: Repository,
    pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
) -> None:
    users, count = [new_user() for _ in range(10)], 30
    eager = replace(settings, outbox_delay=0.0, outbox_interval=0.01, node_id="eager")
    tabs = await open_tabs(gateway, users[:3])
    try:
        watcher = asyncio.create_task(watch(redis_client, users, len(users) * count))
        await asyncio.sleep(0.2)  # subscribed
        with serve(create_app(eager)), serve(create_app(replace(eager, node_id="eager-2"))):
            await insert_unpublished(repo, users, count)
            async with asyncio.timeout(30):
                seen = await watcher
            await wait_published(pool, users)
        for tab in tabs:
            await tab.wait_seq(count, within=BOUND)
    finally:
        await stop_tabs(tabs)
    assert len(seen) == len(users) * count
    assert max(seen.values()) == 1
    assert all(tab.duplicates == 0 for tab in tabs)


async def test_a_replay_of_an_unpublished_row_publishes_it(
    settings: DispatcherSettings,
    repo: Repository,
    pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
) -> None:
    user = new_user()
    # No scan during the test: only the replay can publish the row.
    quiet = replace(settings, outbox_delay=0.2, outbox_interval=60.0)
    [stored] = await repo.insert(
        NewNotification(type="system:alert", title="t", body="", idempotency_key="k-1"), [user]
    )
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.user_channel(user))
    async with AsyncExitStack() as stack:
        stack.push_async_callback(pubsub.aclose)
        url = stack.enter_context(serve(create_app(quiet)))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10)
        )
        await asyncio.sleep(0.3)  # older than the delay: its first publish counts as lost
        body = {"user_id": user, "type": "system:alert", "title": "t", "idempotency_key": "k-1"}
        answer = await http.post("/v1/notifications", json=body)
        assert answer.status_code == 200
        assert answer.json()["notifications"][0]["id"] == stored.notification.id
        async with asyncio.timeout(BOUND):
            message = None
            while message is None:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    frame = serialization.loads(envelope.parse(message["data"]).frame)
    assert (frame["type"], frame["seq"]) == ("notification:new", 1)
    assert await unpublished(pool, [user]) == 0


@pytest.fixture
async def live_http(settings: DispatcherSettings) -> AsyncIterator[httpx.AsyncClient]:
    with serve(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as client:
            yield client


async def test_published_rows_are_marked_and_not_published_again(
    live_http: httpx.AsyncClient, pool: asyncpg.Pool, redis_client: aioredis.Redis
) -> None:
    users = [new_user() for _ in range(3)]
    # Listening past the delay (1 s) and a scan: an unmarked row would be published again.
    watcher = asyncio.create_task(watch(redis_client, users, len(users), settle=2.0))
    await asyncio.sleep(0.2)  # subscribed
    body = {"user_ids": users, "type": "system:alert", "title": "t"}
    assert (await live_http.post("/v1/notifications", json=body)).status_code == 201
    async with asyncio.timeout(15):
        seen = await watcher
    assert await unpublished(pool, users) == 0
    assert seen == {(u, 1): 1 for u in users}
