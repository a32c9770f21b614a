"""Faults under a steady stream: a gateway killed with -9, Redis restarted, a slow consumer.
Every fault here happens to processes this test started (own Redis on a spare port)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from shared.presence import online_nodes
from tests.conftest import JWT_SECRET, PRODUCER_KEY
from tests.gateway.cluster import Cluster, new_user, token
from tests.support.services import free_port
from tests.support.tabs import Tab
from tocsin.embedded import start_redis


async def stream(cluster: Cluster, user: str, count: int, every: float) -> list[int]:
    """Send `count` notifications, one per `every` seconds; returns the seqs accepted."""
    seqs = []
    async with cluster.client() as client:
        for i in range(count):
            result = await client.send(user, "system:alert", f"s{i}", "")
            seqs.append(result.seq)
            await asyncio.sleep(every)
    return seqs


def cluster_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
        "TOCSIN_PRESENCE_TTL": "2",
    }


@pytest.fixture
def fault_cluster(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(cluster_env(database_url, redis_url), tmp_path).start(gateways=3)
    yield cluster
    cluster.stop()


async def test_kill_9_gateway_under_stream_loses_nothing_and_leaves_no_ghost(
    fault_cluster: Cluster, redis_url: str
) -> None:
    cluster, user = fault_cluster, new_user()
    tabs = [await Tab(cluster.ws_urls(first=i), token(user)).start() for i in range(3)]
    redis = aioredis.Redis.from_url(redis_url)
    try:
        assert sorted(await online_nodes(redis, user)) == ["gw0", "gw1", "gw2"]
        sending = asyncio.create_task(stream(cluster, user, 120, 0.01))
        await tabs[1].wait_seq(30, within=20)
        cluster.gateways[1].kill()
        seqs = await sending
        assert seqs == list(range(1, 121))
        for tab in tabs:
            await tab.wait_seq(120, within=20)
            assert sorted(tab.notifications) == seqs
            assert tab.duplicates == 0
        assert tabs[1].connections >= 2  # it moved to another node
        assert all(4008 not in tab.close_codes for tab in tabs)
        await asyncio.sleep(2.5)  # presence TTL
        assert sorted(await online_nodes(redis, user)) == ["gw0", "gw2"]
    finally:
        await asyncio.gather(*(tab.stop() for tab in tabs))
        await redis.aclose()


async def test_redis_restart_under_stream_loses_nothing(database_url: str, tmp_path: Path) -> None:
    # The embedded default's own Redis on a spare port: stopped and restarted by this test only.
    port = free_port()
    own = start_redis(tmp_path, port)
    cluster = Cluster(cluster_env(database_url, own.url), tmp_path).start(gateways=2)
    user = new_user()
    tabs = [await Tab(cluster.ws_urls(first=i), token(user)).start() for i in range(2)]
    try:
        sending = asyncio.create_task(stream(cluster, user, 100, 0.02))
        await tabs[0].wait_seq(20, within=20)
        own.stop()
        await asyncio.sleep(1.0)
        own = start_redis(tmp_path, port)
        seqs = await sending
        assert seqs == list(range(1, 101))  # the dispatcher kept accepting
        for tab in tabs:
            await tab.wait_seq(100, within=30)
            assert sorted(tab.notifications) == seqs
    finally:
        await asyncio.gather(*(tab.stop() for tab in tabs))
        cluster.stop()
        own.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def closes(url: str, code: str) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{url}/metrics")).text
    for line in text.splitlines():
        if line.startswith(f'tocsin_gateway_closes_total{{code="{code}"}}'):
            return float(line.split()[-1])
    return 0.0


async def test_slow_consumer_is_disconnected_and_memory_stays_bounded(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {**cluster_env(database_url, redis_url), "TOCSIN_WS_SEND_BUFFER": "262144"}
    cluster = Cluster(env, tmp_path).start(gateways=1)
    gateway = cluster.gateways[0]
    user = new_user()
    try:
        ws = await websockets.connect(cluster.ws_url(0), max_queue=1, open_timeout=5)
        await ws.send(f'{{"type":"hello","v":1,"token":"{token(user)}"}}')
        before = rss_kib(gateway.pid)
        body, data = "x" * 4000, {"pad": "y" * 15_000}
        async with cluster.client() as client:
            for i in range(2000):  # up to ~40 MB to a client that never reads
                await client.send(user, "system:alert", f"big {i}", body, data=data)
                if i % 100 == 99 and await closes(gateway.url, "4009") >= 1:
                    break
        assert await closes(gateway.url, "4009") >= 1
        growth_mib = (rss_kib(gateway.pid) - before) / 1024
        assert growth_mib < 32, f"gateway grew {growth_mib:.1f} MiB"
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"{gateway.url}/readyz")).status_code == 200
        await ws.close()
    finally:
        cluster.stop()


async def test_sigterm_drains_with_jittered_reconnects_and_withdraws_presence(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {**cluster_env(database_url, redis_url), "TOCSIN_PRESENCE_TTL": "60"}
    env["TOCSIN_RECONNECT_SPREAD"] = "5"
    cluster = Cluster(env, tmp_path).start(gateways=1)
    user = new_user()
    tabs = [Tab([cluster.ws_url(0)], token(user), reconnect=False) for _ in range(8)]
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await asyncio.gather(*(tab.start() for tab in tabs))
        assert await online_nodes(redis, user) == ["gw0"]
        started = time.monotonic()
        code = await asyncio.to_thread(cluster.gateways[0].terminate, 20)
        # uvicorn re-raises the captured SIGTERM once its graceful shutdown is complete.
        assert code in (0, -15)
        assert "Application shutdown complete" in cluster.gateways[0].log()
        assert time.monotonic() - started < 15
        delays = []
        for tab in tabs:
            await tab.wait(lambda t=tab: bool(t.close_codes))  # type: ignore[misc]
            assert tab.close_codes == [1012]
            delays += [e["delayMs"] for e in tab.events if e["type"] == "reconnect"]
        assert len(delays) == 8 and all(0 <= d <= 5000 for d in delays)
        assert len(set(delays)) > 1  # jittered, not one thundering herd
        assert await online_nodes(redis, user) == []  # withdrawn at once, not after 60 s
    finally:
        await asyncio.gather(*(tab.stop() for tab in tabs))
        cluster.stop()
        await redis.aclose()
