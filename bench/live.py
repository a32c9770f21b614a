"""Live throughput: the offered rate stepped up until less than 90% is delivered within the
step; saturation = the median delivered/s of 3 steps at that rate; latency = medians of 3
steps at half of it. Every step is bounded in time, and the next starts once the last drained
(or after a bounded wait)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.procs import LOAD_PROCESSES, LoadClient, core_busy, core_times
from bench.systems import System

DELIVERED = 0.9  # a step delivering less than this share within the step is past saturation
CLIENT_BOUND = 0.9  # a load core (or load client) busier than this set the pace itself


@dataclass(frozen=True)
class Ladder:
    start: float  # frames/s of the first step
    factor: float  # each next step offers this much more
    steps: int  # at most this many steps up
    seconds: float  # length of each step
    repeats: int = 3  # steps at saturation and at half load (medians of these)


async def step(
    system: System,
    client: LoadClient,
    users: list[str],
    rate: float,
    seconds: float,
    clock: str = "sent",
    fanout: int = 1,
) -> dict[str, Any]:
    """One step: `rate` publishes/s for `seconds`; each reaches `fanout` tabs."""
    cpu0 = [server.cpu_seconds() for server in system.servers]
    load0 = _load_core_seconds(client)
    cores0 = core_times()
    wall0 = time.monotonic()
    await client.call("begin", clock=clock)
    offered = await system.push(users, rate, seconds)
    window = await client.call("end")
    wall = time.monotonic() - wall0
    cpu = [(s.cpu_seconds() - c) / wall for s, c in zip(system.servers, cpu0, strict=True)]
    load_core = (_load_core_seconds(client) - load0) / wall
    cores = core_busy(cores0)
    drained = await client.call("drain", expected=offered * fanout, timeout=10, quiet=1.0)
    asked = rate * seconds * fanout
    return {
        "rate": rate,
        "asked": round(asked),
        "offered": offered * fanout,
        "received": window["received"],
        "received_after_drain": drained["received"],
        "delivered_per_s": window["received"] / seconds,
        "delivered_share": window["received"] / max(asked, 1),
        "latency_ms": window["latency_ms"],
        "client_cpu": window["client_cpu"],
        "server_cpu": cpu,
        "load_core_cpu": load_core,
        "cores_busy": cores,  # whole-core busy shares: what the server did not use, others did
        "publisher_short": offered < 0.95 * asked,
    }


async def saturate(
    system: System,
    client: LoadClient,
    users: list[str],
    ladder: Ladder,
    clock: str = "sent",
    fanout: int = 1,
) -> dict[str, Any]:
    """Climb until a step delivers < 90% (`bad`); one step between the last good rate and it;
    then 3 steps at each. Saturation: the larger median delivered/s of the two rates (a
    system that collapses under overload is credited with what it sustained)."""

    async def at(rate: float) -> dict[str, Any]:
        return await step(system, client, users, rate, ladder.seconds, clock, fanout)

    steps: list[dict[str, Any]] = []
    good: dict[str, Any] | None = None
    rate = ladder.start
    for _ in range(ladder.steps):
        steps.append(await at(rate))
        if steps[-1]["delivered_share"] < DELIVERED:
            break
        good = steps[-1]
        rate *= ladder.factor
    bad = steps[-1] if steps[-1]["delivered_share"] < DELIVERED else None
    if good is not None and bad is not None and ladder.repeats > 1:
        steps.append(await at((good["rate"] * bad["rate"]) ** 0.5))
        if steps[-1]["delivered_share"] < DELIVERED:
            bad = steps[-1]
        else:
            good = steps[-1]
    groups = {}
    for name, first in (("sustained", good), ("overload", bad)):
        if first is not None:
            more = [await at(first["rate"]) for _ in range(ladder.repeats - 1)]
            groups[name] = [first, *more]
    medians = {name: _group(group) for name, group in groups.items()}
    saturation = max(m["delivered_per_s"] for m in medians.values())
    half = [await at(saturation / 2 / fanout) for _ in range(ladder.repeats)]
    top = groups.get("sustained") or groups["overload"]
    return {
        "saturation_per_s": saturation,
        "saturated": bad is not None,
        "sustained": medians.get("sustained"),
        "overload": medians.get("overload"),
        "half_load_per_s": saturation / 2,
        "p50_ms": _median(h["latency_ms"]["p50"] for h in half),
        "p99_ms": _median(h["latency_ms"]["p99"] for h in half),
        "half_load_lost": sum(h["offered"] - h["received_after_drain"] for h in half),
        "client_cpu_at_saturation": statistics.median(s["client_cpu"] for s in top),
        "client_bound": statistics.median(s["client_cpu"] for s in top) > CLIENT_BOUND,
        "load_core_bound": statistics.median(s["load_core_cpu"] for s in top) > CLIENT_BOUND,
        "server_cpu_at_saturation": statistics.median(sum(s["server_cpu"]) for s in top),
        "server_core_busy_at_saturation": statistics.median(s["cores_busy"][0] for s in top),
        "cores_busy_at_saturation": statistics.median(
            statistics.fmean(s["cores_busy"]) for s in top
        ),
        "per_server_core_s": medians.get("sustained", medians.get("overload", {})).get(
            "per_server_core_s"
        ),
        "ladder": steps,
        "saturation_steps": [s for group in groups.values() for s in group],
        "half_steps": half,
        "client_stats": await client.call("stats"),
    }


def _group(group: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the steps at one offered rate."""
    return {
        "rate": group[0]["rate"],
        "delivered_per_s": statistics.median(s["delivered_per_s"] for s in group),
        "delivered_share": statistics.median(s["delivered_share"] for s in group),
        "server_cpu": statistics.median(sum(s["server_cpu"]) for s in group),
        # frames per second of server CPU: what the noise of a shared machine distorts least
        "per_server_core_s": statistics.median(
            s["delivered_per_s"] / max(sum(s["server_cpu"]), 0.01) for s in group
        ),
    }


def _load_core_seconds(client: LoadClient) -> float:
    """CPU seconds of everything on the load core: the client, this process (the publisher)
    and Redis."""
    own = time.process_time()
    return own + client.cpu_seconds() + sum(p.cpu_seconds() for p in LOAD_PROCESSES)


def _median(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
