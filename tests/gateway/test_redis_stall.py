"""A gateway whose Redis link stalls (or is blackholed) keeps its tabs fed from PostgreSQL.

The gateway reaches the real Redis through tests/support/tcpproxy.py, the dispatcher
directly. While the link is frozen every tab, including one that connects meanwhile, holds
each notification within 5 s of its send, once and in order; the node reports not ready and
exports tocsin_gateway_store_polling 1. After the heal, pub/sub takes over again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import tocsin_client
from shared.models import NewNotification, Notification
from shared.repository import Repository
from tests.gateway.cluster import Cluster, new_user, token
from tests.gateway.test_faults import cluster_env
from tests.support.processes import spawn
from tests.support.services import free_port
from tests.support.tabs import Tab
from tests.support.tcpproxy import TcpProxy, tcp_proxy

BOUND = 5.0  # seconds from a send to every tab of its user holding it (issue 8, item 2)


@pytest.fixture
def proxied(
    database_url: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[Cluster, TcpProxy]]:
    """One gateway whose Redis is behind a proxy, one dispatcher with a direct link."""
    target = urlsplit(redis_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        behind = target._replace(netloc=proxy.url_host_port).geturl()
        cluster = Cluster(cluster_env(database_url, behind), tmp_path)
        try:
            cluster.gateways = [cluster.start_gateway(0)]
            port = free_port()
            env = {**cluster_env(database_url, redis_url), "TOCSIN_DISPATCHER_PORT": str(port)}
            cluster.dispatcher = spawn(["dispatcher"], env, port, tmp_path)
            yield cluster, proxy
        finally:
            cluster.stop()


@dataclass
class Ledger:
    """What was sent to whom and how long each tab took to hold it."""

    client: tocsin_client.AsyncClient
    tabs: dict[str, list[Tab]]
    sent: dict[str, list[int]] = field(default_factory=dict)
    watchers: list[asyncio.Task[float]] = field(default_factory=list)

    async def send(self, user: str) -> None:
        started = time.monotonic()
        result = await self.client.send(user, "system:alert", f"n{len(self.sent.get(user, []))}")
        self.sent.setdefault(user, []).append(result.seq)
        for tab in self.tabs.get(user, []):
            self.watchers.append(asyncio.create_task(held(tab, result.seq, started)))

    async def settle(self) -> float:
        """Wait for every tab to hold everything sent so far; the worst delay among them."""
        delays = await asyncio.gather(*self.watchers)
        self.watchers.clear()
        return max(delays, default=0.0)


async def held(tab: Tab, seq: int, sent_at: float) -> float:
    """Seconds from the send to this tab holding seq; fails past BOUND."""
    try:
        await tab.wait(lambda: seq in tab.notifications, within=BOUND + sent_at - time.monotonic())
    except TimeoutError:
        raise AssertionError(f"a tab lacked seq {seq} {BOUND}s after its send") from None
    return time.monotonic() - sent_at


async def gauge(url: str, name: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{url}/metrics")).text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    for _ in range(int(within / 0.2)):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {within}s")


async def ride_out(cluster: Cluster, fault: Callable[[], None], seconds: float) -> Ledger:
    """Tabs held, `fault` for `seconds` while sending; a new tab and user arrive meanwhile."""
    a, b, c = new_user(), new_user(), new_user()
    url = [cluster.ws_url(0)]
    tabs = {u: [await Tab(url, token(u), reconnect=False).start() for _ in range(n)]
            for u, n in ((a, 2), (b, 1))}  # fmt: skip
    async with cluster.client() as client:
        ledger = Ledger(client, tabs)
        for user in (a, b, c, c):  # c has a backlog and no tab yet
            await ledger.send(user)
        await ledger.settle()  # live over pub/sub before the fault
        fault()
        faulted = time.monotonic()
        worst = 0.0
        while (elapsed := time.monotonic() - faulted) < seconds:
            if elapsed > 4 and c not in tabs:
                worst = await arrive_meanwhile(cluster, ledger, a, c)
            for user in (a, b, c):
                await ledger.send(user)
            await asyncio.sleep(0.3)
        worst = max(worst, await ledger.settle())
        print(f"worst delay while the link was down: {worst:.2f}s")
    return ledger


async def arrive_meanwhile(cluster: Cluster, ledger: Ledger, a: str, c: str) -> float:
    """While the link is down, a second tab of held user `a` reads the store past what the
    poll has sent a's other tabs, and new user `c`'s first tab gets its backlog. With no
    further send, every tab then holds all that was sent (the node is not ready meanwhile)."""
    url, gateway = [cluster.ws_url(0)], cluster.gateways[0]
    await ledger.send(a)
    ledger.tabs[a].append(await Tab(url, token(a), reconnect=False).start())
    ledger.tabs[c] = [await Tab(url, token(c), reconnect=False).start()]
    assert sorted(ledger.tabs[c][0].notifications) == ledger.sent[c]  # its backlog
    async with httpx.AsyncClient(timeout=10) as http:
        ready = await http.get(f"{gateway.url}/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["pubsub"] != "ok"
    assert await gauge(gateway.url, "tocsin_gateway_store_polling") == 1
    return await ledger.settle()


async def healed(cluster: Cluster, ledger: Ledger, heal: Callable[[], None]) -> None:
    """After the heal, polling stops and pub/sub delivers; nothing lost, doubled or reordered."""
    gateway = cluster.gateways[0]
    heal()
    started = time.monotonic()

    async def back() -> bool:
        return await gauge(gateway.url, "tocsin_gateway_store_polling") == 0

    await until(back, 20)
    print(f"polling stopped {time.monotonic() - started:.1f}s after the heal")
    async with cluster.client() as client:
        ledger.client = client
        for user in ledger.sent:
            await ledger.send(user)
        print(f"worst delay after the heal: {await ledger.settle():.2f}s")
    for user, tabs in ledger.tabs.items():
        for tab in tabs:
            assert tab.close_codes == []  # the node kept every socket
            assert list(tab.notifications) == tab.arrivals  # no duplicate, in arrival order
            assert tab.arrivals == [s for s in ledger.sent[user] if s >= tab.arrivals[0]]
    log = gateway.log()
    assert log.count("notifications from the store every") == 1  # once, not per tick
    assert log.count("store poll stopped") == 1
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{gateway.url}/readyz")).status_code == 200


async def test_the_poll_query_reads_a_gap_free_run_per_user_within_its_bounds(
    repo: Repository,
) -> None:
    a, b, c = sorted(new_user() for _ in range(3))
    for i in range(5):
        await repo.insert(NewNotification("system:alert", f"t{i}", ""), [a, b])
    await repo.insert(NewNotification("system:alert", "only", ""), [c])
    cursors = [(a, 1), (b, 0), (c, 1), (new_user(), 0)]

    def runs(rows: list[Notification]) -> list[tuple[str, int]]:
        return [(n.user_id, n.seq) for n in rows]

    assert runs(await repo.newer_for_users(cursors, 3, 100)) == [
        (a, 2), (a, 3), (a, 4), (b, 1), (b, 2), (b, 3),
    ]  # fmt: skip
    # Over the tick's bound, every user's first rows come before anyone's later ones.
    assert runs(await repo.newer_for_users(cursors, 3, 3)) == [(a, 2), (a, 3), (b, 1)]
    assert await repo.newer_for_users([], 3, 3) == []


async def test_a_stalled_link_keeps_every_tab_fed_from_the_store(
    proxied: tuple[Cluster, TcpProxy],
) -> None:
    cluster, proxy = proxied
    ledger = await ride_out(cluster, proxy.stall, 10)
    try:
        await healed(cluster, ledger, proxy.heal)
    finally:
        for tabs in ledger.tabs.values():
            await asyncio.gather(*(tab.stop() for tab in tabs))


async def test_a_blackholed_link_keeps_every_tab_fed_from_the_store(
    proxied: tuple[Cluster, TcpProxy],
) -> None:
    cluster, proxy = proxied
    ledger = await ride_out(cluster, proxy.blackhole, 6)
    try:
        await healed(cluster, ledger, proxy.heal)
    finally:
        for tabs in ledger.tabs.values():
            await asyncio.gather(*(tab.stop() for tab in tabs))
