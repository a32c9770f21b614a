"""The faults. Each takes a running scenario, does its damage while the stream flows, and
returns the monotonic time the fault ended (the start of the recovery clock)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from tests.chaos.topology import Shape

if TYPE_CHECKING:
    from tests.chaos.runner import Run

Fault = Callable[["Run"], Awaitable[float]]


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Fault
    what: str
    needs: str = ""  # the fix this scenario waits for, if today's code fails it
    shape: Callable[[], Shape] = Shape
    token_ttl: int = 600
    refresh_half: bool = False  # half the tabs refresh with the `token` frame
    slow_tabs: bool = False  # the first tab of every fifth user has a small receive buffer
    min_fault_seconds: float = 0.0  # a timed fault lasts at least this long, whatever the load
    recovery_bound: float = 5.0  # issue 8's targets, asserted by the short form
    max_wait_bound: float | None = None  # for faults no tab may be starved through


async def gateway_kill(run: Run) -> float:
    run.topology.gateways[1].kill()
    return time.monotonic()


async def dispatcher_kill(run: Run) -> float:
    """A burst of sends to dispatcher 0, killed while they are in flight: some are committed
    and never published by it; the producers replay them at dispatcher 1 (same key)."""
    burst = [asyncio.create_task(run.send_once(first=0)) for _ in range(run.load.burst)]
    await asyncio.sleep(0.03)
    run.topology.dispatchers[0].kill()
    ended = time.monotonic()
    await asyncio.gather(*burst)
    return ended


async def redis_restart(run: Run) -> float:
    await asyncio.to_thread(run.topology.redis.stop)
    await asyncio.sleep(min(2.0, run.load.fault_seconds))
    await asyncio.to_thread(run.topology.restart_redis)
    return time.monotonic()


async def pubsub_kill(run: Run) -> float:
    client = aioredis.Redis(host="127.0.0.1", port=run.topology.redis_port)
    try:
        await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # type: ignore[no-untyped-call]
    finally:
        await client.aclose()
    return time.monotonic()


async def postgres_restart(run: Run) -> float:
    postgres = run.topology.postgres
    assert postgres is not None
    await asyncio.to_thread(postgres.stop)
    await asyncio.sleep(min(2.0, run.load.fault_seconds))
    await asyncio.to_thread(run.topology.restart_postgres)
    return time.monotonic()


async def gateway_redis_stall(run: Run) -> float:
    link = run.topology.gateway_links[0]
    link.stall()
    await asyncio.sleep(max(run.load.fault_seconds, run.scenario.min_fault_seconds))
    link.heal()
    return time.monotonic()


async def dispatcher_redis_blackhole(run: Run) -> float:
    link = run.topology.dispatcher_links[0]
    link.blackhole()
    await asyncio.sleep(run.load.fault_seconds)
    link.heal()
    return time.monotonic()


async def reconnect_storm(run: Run) -> float:
    for tab in run.tabs:
        tab.drop()
    return time.monotonic()


async def slow_consumers(run: Run) -> float:
    """One tab of every fifth user stops reading while those users get 16 KB notifications."""
    slow_users = run.users[::5]  # their first tabs have a small receive buffer (slow_tabs)
    slow = [next(t for t in run.tabs if t.user == user) for user in slow_users]
    for tab in slow:
        tab.reading.clear()
    deadline = time.monotonic() + run.load.fault_seconds
    while time.monotonic() < deadline:
        await run.send_big(slow_users)
        await asyncio.sleep(0.05)
    for tab in slow:
        tab.reading.set()
    return time.monotonic()


async def token_expiry(run: Run) -> float:
    """Tokens live a few seconds; half the tabs refresh them with the `token` frame, the
    others are closed 4003 and reconnect with a fresh one. The clock starts with the window."""
    started = time.monotonic()
    await asyncio.sleep(run.load.fault_seconds)
    return started


def _stall_shape() -> Shape:
    return Shape(env={"TOCSIN_STORE_POLL_INTERVAL": "1.0"})


def _postgres_shape() -> Shape:
    return Shape(own_postgres=True)


def _slow_shape() -> Shape:
    return Shape(env={"TOCSIN_WS_SEND_BUFFER": "65536", "TOCSIN_WS_SEND_QUEUE": "64"})


def _token_shape() -> Shape:
    return Shape(env={"TOCSIN_JWT_LEEWAY": "0"})


SCENARIOS = [
    Scenario("gateway-kill-9", gateway_kill, "gateway 1 killed with SIGKILL; its tabs move"),
    Scenario(
        "dispatcher-kill-9",
        dispatcher_kill,
        "dispatcher 0 killed with SIGKILL during a burst of in-flight sends",
        needs="H-A outbox (a committed, unpublished row is published; a replay publishes)",
    ),
    Scenario("redis-restart", redis_restart, "Redis stopped, restarted on its port after 2 s"),
    Scenario("pubsub-kill", pubsub_kill, "CLIENT KILL TYPE pubsub on Redis"),
    Scenario(
        "postgres-restart",
        postgres_restart,
        "PostgreSQL (own instance) stopped, restarted after 2 s",
        shape=_postgres_shape,
    ),
    Scenario(
        "gateway-redis-stall",
        gateway_redis_stall,
        "gateway 0's link to Redis stalled (open, no bytes) for the fault window",
        needs="H-B (a gateway that loses Redis polls the store)",
        shape=_stall_shape,
        min_fault_seconds=8.0,  # longer than the 5 s a tab may wait on a starved node
        max_wait_bound=5.0,
    ),
    Scenario(
        "dispatcher-redis-blackhole",
        dispatcher_redis_blackhole,
        "dispatcher 0's link to Redis blackholed for the fault window",
        needs="H-A outbox (re-publish within 2 s of the link's return)",
        recovery_bound=2.0,
    ),
    Scenario("reconnect-storm", reconnect_storm, "every tab's socket aborted at once"),
    Scenario(
        "slow-consumers",
        slow_consumers,
        "a tab of every fifth user stops reading while 16 KB notifications pile up",
        needs="H-C for the 4009 close (loss is checked either way)",
        shape=_slow_shape,
        slow_tabs=True,
    ),
    Scenario(
        "token-expiry",
        token_expiry,
        "4 s tokens: half the tabs refresh by `token` frame, half reconnect after 4003",
        shape=_token_shape,
        token_ttl=4,
        refresh_half=True,
    ),
]

BY_NAME = {s.name: s for s in SCENARIOS}
