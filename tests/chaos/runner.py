"""Runs one scenario: servers, tabs, a steady stream of sends, the fault, then the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

import tocsin_client
from tests.chaos import topology
from tests.chaos.ledger import Figures, Ledger, evaluate
from tests.chaos.scenarios import Scenario
from tests.chaos.tab import ChaosTab
from tests.conftest import JWT_SECRET
from tocsin_client.errors import TocsinError

SEND_DEADLINE = 20.0  # seconds a producer keeps retrying one send across dispatchers
RETRYABLE = (None, 502, 503, 504)  # no answer, or the store/edge said "later"
PAD = "x" * 12_000


@dataclass(frozen=True)
class Load:
    users: int
    tabs_per_user: int
    rate: float  # sends per second, all producers together
    producers: int
    warmup: float  # seconds of stream before the fault
    after: float  # seconds of stream after the fault ends
    bound: float  # seconds after the stream stops for every tab to hold everything
    fault_seconds: float  # length of the timed faults (stall, blackhole, slow, tokens)
    burst: int  # in-flight sends when a dispatcher is killed


FULL = Load(100, 2, 40.0, 8, 4.0, 6.0, 30.0, 20.0, 60)
SHORT = Load(15, 2, 20.0, 4, 1.0, 1.5, 10.0, 4.0, 20)


def tokens(user: str, ttl: int) -> str:
    return tocsin_client.user_token(user, JWT_SECRET, ttl=ttl)


@dataclass
class Run:
    scenario: Scenario
    load: Load
    topology: topology.Topology
    users: list[str]
    tabs: list[ChaosTab]
    ledger: Ledger = field(default_factory=Ledger)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    clients: list[tocsin_client.AsyncClient] = field(default_factory=list)

    async def send_once(self, first: int | None = None, user: str | None = None) -> None:
        """One logical send with its own idempotency key, failing over between dispatchers."""
        user = user or random.choice(self.users)
        await self._send([user], first, {})

    async def send_big(self, users: list[str]) -> None:
        await self._send(users, None, {"pad": PAD})

    async def _send(self, users: list[str], first: int | None, data: dict[str, str]) -> None:
        key = uuid.uuid4().hex
        self.ledger.sent += len(users)
        index = random.randrange(len(self.clients)) if first is None else first
        deadline = time.monotonic() + SEND_DEADLINE
        while time.monotonic() < deadline:
            client = self.clients[index % len(self.clients)]
            try:
                results = await client.send_many(
                    users, "chaos:tick", "tick", "", data=data, idempotency_key=key
                )
            except TocsinError as exc:
                if exc.status not in RETRYABLE:
                    break
                index += 1
                await asyncio.sleep(0.1)
                continue
            for result in results:
                self.ledger.record(result.user_id, result.seq, result.id)
            return
        self.ledger.refused += len(users)

    async def produce(self) -> None:
        interval = self.load.producers / self.load.rate
        while not self.stopping.is_set():
            await self.send_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval * random.uniform(0.5, 1.5))


def _tabs(scenario: Scenario, load: Load, urls: list[str], users: list[str]) -> list[ChaosTab]:
    tabs = []
    for u, user in enumerate(users):
        for k in range(load.tabs_per_user):
            first = (u * load.tabs_per_user + k) % len(urls)
            tabs.append(
                ChaosTab(
                    user,
                    urls[first:] + urls[:first],
                    tokens,
                    ttl=scenario.token_ttl,
                    refresh_by_frame=scenario.refresh_half and k % 2 == 0,
                    small_buffer=scenario.slow_tabs and u % 5 == 0 and k == 0,
                )
            )
    return tabs


async def _wait(predicate: object, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.1)
    return False


async def _owners(database_url: str, tabs: list[ChaosTab]) -> dict[str, str]:
    ids = list({i for tab in tabs for i in tab.held})
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT id::text, user_id FROM tocsin_notifications WHERE id = ANY($1::uuid[])", ids
        )
    finally:
        await conn.close()
    return {row["id"]: row["user_id"] for row in rows}


async def run_scenario(scenario: Scenario, load: Load, folder: Path, database_url: str) -> Figures:
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    topo = await topology.start(scenario.shape(), folder, database_url)
    users = [f"chaos-{uuid.uuid4().hex[:12]}" for _ in range(load.users)]
    run = Run(scenario, load, topo, users, _tabs(scenario, load, topo.ws_urls, users))
    run.clients = [topo.client(i) for i in range(len(topo.dispatchers))]
    try:
        return await _drive(run)
    finally:
        await asyncio.gather(*(tab.stop() for tab in run.tabs))
        await asyncio.gather(*(c.close() for c in run.clients), return_exceptions=True)
        await asyncio.to_thread(topo.stop)


async def _drive(run: Run) -> Figures:
    for tab in run.tabs:
        tab.start()
    if not await _wait(lambda: all(t.welcomed for t in run.tabs), 45):
        raise RuntimeError(_not_welcomed(run))
    producers = [asyncio.create_task(run.produce()) for _ in range(run.load.producers)]
    await asyncio.sleep(run.load.warmup)
    fault_end = await run.scenario.fault(run)
    await asyncio.sleep(run.load.after)
    run.stopping.set()
    await asyncio.gather(*producers)
    await _wait(lambda: run.ledger.complete(run.tabs), run.load.bound)
    owners = await _owners(run.topology.database_url, run.tabs)
    figures = evaluate(run.scenario.name, run.ledger, run.tabs, fault_end, owners)
    figures.notes = run.scenario.needs
    return figures


def _not_welcomed(run: Run) -> str:
    late = [t for t in run.tabs if not t.welcomed]
    codes = sorted({str(c) for t in late for c in t.close_codes})
    logs = "\n".join(g.log()[-1500:] for g in run.topology.gateways)
    return (
        f"{run.scenario.name}: {len(late)} of {len(run.tabs)} tabs not welcomed within 45 s"
        f" (closes {codes}, connections {sum(t.connections for t in late)}); gateway logs:\n{logs}"
    )
