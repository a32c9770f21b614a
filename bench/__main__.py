"""`python -m bench [--full | --self-check] [--out DIR]`: see bench/__init__.py."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench import dispatch, idle, live, report, resume
from bench.live import Ladder
from bench.procs import (
    LOAD_CORE,
    LOAD_PROCESSES,
    ROOT,
    LoadClient,
    Measured,
    pin_pid,
    pin_self,
    raise_fd_limit,
    two_cores,
)
from bench.systems import (
    Stack,
    System,
    gateway_reads_envelopes,
    start_floor,
    start_limit,
    start_tocsin,
)
from shared.migrate import migrate_url

Starter = Callable[[Stack], Awaitable[System]]
DEFAULT_OUT = ROOT / "bench" / "results"
NOISE = (
    "The machine is shared with other work and noisy: figures are medians of 3 steps, "
    "comparable within one run (the ratios), less so across runs."
)


@dataclass(frozen=True)
class Profile:
    name: str
    users: int
    ladder: Ladder
    idle_sockets: int
    idle_chunks: int
    single_seconds: float
    single_concurrency: int
    bulk_users: int
    full: bool = False
    storm_tabs: int = 10_000
    deep_resume: int = 5_000


SELF_CHECK = Profile(
    "self-check", 20, Ladder(100, 2, 1, 1.0, 1), 40, 2, 1.0, 4, 50, storm_tabs=30, deep_resume=300
)
SHORT = Profile("short", 2000, Ladder(2000, 1.6, 12, 2.0), 5000, 5, 5.0, 32, 10_000)
FULL = Profile("full", 2000, Ladder(2000, 1.4, 16, 3.0), 19_500, 10, 10.0, 32, 10_000, True)


async def start_tocsin2(stack: Stack) -> System:
    return await start_tocsin(stack, processes=2)


# --systems picks from these; FULL=1 measures tocsin2's live throughput among its extras.
SYSTEMS: dict[str, Starter] = {
    "limit": start_limit,
    "floor": start_floor,
    "tocsin": start_tocsin,
    "tocsin2": start_tocsin2,
}


@contextlib.asynccontextmanager
async def backends(folder: Path) -> AsyncIterator[tuple[str, str]]:
    """Redis: always our own (embedded, on the load core, so the machine's Redis sees no
    load). PostgreSQL: DATABASE_URL, else an embedded one."""
    from tocsin.embedded import start_postgres, start_redis

    redis_server = await asyncio.to_thread(start_redis, folder)
    postgres = None
    try:
        if redis_server.pid is not None:
            pin_pid(redis_server.pid, LOAD_CORE)
            LOAD_PROCESSES.append(Measured(redis_server.pid))
        client = aioredis.Redis.from_url(redis_server.url)
        # At overload the floor's and the gateway's subscriber buffers grow for a few seconds;
        # Redis's default 32 MiB cut would end the run rather than measure it.
        await client.config_set("client-output-buffer-limit", "pubsub 512mb 128mb 60")
        await client.aclose()
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            postgres = await asyncio.to_thread(start_postgres, folder)
            database_url = postgres.url
        await migrate_url(database_url)
        yield redis_server.url, database_url
    finally:
        if postgres is not None:
            await asyncio.to_thread(postgres.stop)
        await asyncio.to_thread(redis_server.stop)


async def idle_scenario(start: Starter, stack: Stack, client: LoadClient, p: Profile) -> Any:
    system = await start(stack)
    try:
        result = await idle.capacity(system, client, stack, p.idle_sockets, p.idle_chunks)
        return {"label": system.label, **result}
    finally:
        await system.stop()


async def live_scenario(
    start: Starter, stack: Stack, client: LoadClient, p: Profile, tabs: int = 1, tag: str = ""
) -> Any:
    system = await start(stack)
    try:
        users = system.users(stack, p.users // tabs, tag)
        connected = await client.call(
            "connect", wait=600, urls=system.urls, users=users, tabs=tabs,
            secret=system.secret, concurrency=50, timeout=60,
        )  # fmt: skip
        if connected["failed"]:
            raise RuntimeError(
                f"{system.name}: {connected['failed']} tabs failed to connect: "
                f"{connected['failures']}"
            )
        result = await live.saturate(system, client, users, p.ladder, fanout=tabs)
        await client.call("close_all", wait=120, timeout=60)
        return {
            "label": system.label,
            "notes": system.notes,
            "pinned": system.pinned,
            "tabs_per_user": tabs,
            "connect": connected,
            **result,
        }
    finally:
        await system.stop()


async def dispatcher_scenario(stack: Stack, p: Profile) -> dict[str, Any]:
    server = await asyncio.to_thread(dispatch.start_dispatcher, stack)
    try:
        users = [f"b{stack.run_id}-send-{i:05d}" for i in range(p.bulk_users)]
        singles = await dispatch.singles(
            server, stack, users, p.single_concurrency, p.single_seconds
        )
        bulk_users = [f"b{stack.run_id}-bulk-{i:05d}" for i in range(p.bulk_users)]
        bulk = await dispatch.bulk(server, stack, bulk_users)
        return {"singles": singles, "bulk": bulk}
    finally:
        await asyncio.to_thread(server.stop)


PROCESSES_2 = "tocsin gateway --processes 2"
MISSING_FULL: list[str] = []
MISSING_SHORT = [
    "19,500 idle sockets (short profile: 5,000)",
    "500 users x 4 tabs",
    PROCESSES_2,
    "end to end through the dispatcher with commit-to-socket latency",
    "the reconnect storm (every tab drops and resumes 10 missed)",
    "one user resuming 5,000",
]


async def run(p: Profile, out: Path, only: list[str]) -> dict[str, Any]:
    raise_fd_limit()
    pin_self()
    results: dict[str, Any] = {
        "meta": meta(p),
        "live": {},
        "idle": {},
        "dispatcher": {},
        "missing": [
            item
            for item in (MISSING_FULL if p.full else MISSING_SHORT)
            if not (item == PROCESSES_2 and "tocsin2" in only)
        ],
    }
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        folder = Path(tmp)
        async with backends(folder) as (redis_url, database_url):
            stack = Stack(
                redis_url,
                database_url,
                secrets.token_hex(16),
                secrets.token_hex(16),
                out / "logs",
                secrets.token_hex(3),
            )
            stack.log_dir.mkdir(parents=True, exist_ok=True)
            client = await LoadClient.start()
            try:
                for name in only:
                    log(f"{name}: idle capacity, {p.idle_sockets} sockets")
                    results["idle"][name] = await idle_scenario(SYSTEMS[name], stack, client, p)
                    log(f"{name}: live throughput, {p.users} users")
                    results["live"][name] = await live_scenario(SYSTEMS[name], stack, client, p)
                    log(f"{name}: saturation {results['live'][name]['saturation_per_s']:,.0f}/s")
                if p.full and "tocsin" in only:
                    await full_extras(stack, client, p, results)
                log("dispatcher: single sends and one bulk request")
                results["dispatcher"] = await dispatcher_scenario(stack, p)
            finally:
                await client.stop()
    return results


async def full_extras(
    stack: Stack, client: LoadClient, p: Profile, results: dict[str, Any]
) -> None:
    label = f"Tocsin gateway, {p.users // 4:,} users x 4 tabs"
    log(label)
    four = await live_scenario(start_tocsin, stack, client, p, tabs=4, tag="-4t")
    results["live"]["tocsin-4tabs"] = {**four, "label": label}
    log("tocsin: end to end through the dispatcher (commit-to-socket latency)")
    results["live"]["tocsin-e2e"] = await e2e_scenario(stack, client, p)
    log("tocsin: reconnect storm and one user resuming 5,000")
    results["resume"] = await resume_scenarios(stack, client, p)

    if "tocsin2" not in results["live"]:
        log("tocsin: tocsin gateway --processes 2 (both cores, beside the load)")
        two = await live_scenario(start_tocsin2, stack, client, p, tag="-2p")
        results["live"]["tocsin-2proc"] = two


async def e2e_scenario(stack: Stack, client: LoadClient, p: Profile) -> Any:
    system = await start_tocsin(stack)
    dispatcher = await asyncio.to_thread(dispatch.start_dispatcher, stack)
    if system.publisher is not None:
        await system.publisher.close()  # Redis stays out of it: sends go through the dispatcher
    system.publisher = dispatch.Producer(dispatcher, stack)
    system.label = "Tocsin end to end through the dispatcher"
    try:
        users = system.users(stack, p.users, "-e2e")
        await client.call(
            "connect", wait=600, urls=system.urls, users=users, secret=system.secret,
            concurrency=50, timeout=60,
        )  # fmt: skip
        ladder = dataclasses.replace(p.ladder, start=p.ladder.start / 4, factor=1.5)
        result = await live.saturate(system, client, users, ladder, clock="created")
        await client.call("close_all", wait=120, timeout=60)
        return {"label": system.label, **result}
    finally:
        await system.stop()
        await asyncio.to_thread(dispatcher.stop)


async def resume_scenarios(stack: Stack, client: LoadClient, p: Profile) -> dict[str, Any]:
    system = await start_tocsin(stack)
    dispatcher = await asyncio.to_thread(dispatch.start_dispatcher, stack)
    try:
        storm = await resume.storm(system, client, stack, dispatcher, p.storm_tabs, 10, 200)
        deep = await resume.one_user(system, client, stack, dispatcher, p.deep_resume)
        return {"storm": storm, "one_user": deep}
    finally:
        await system.stop()
        await asyncio.to_thread(dispatcher.stop)


def meta(p: Profile) -> dict[str, Any]:
    command = {"short": "make bench", "full": "make bench FULL=1"}.get(
        p.name, "python -m bench --self-check"
    )
    commit = _git("rev-parse", "--short", "HEAD").strip()
    # What the servers ran: the working tree, with whatever is not committed yet.
    dirty = _git("status", "--porcelain", "--", "gateway", "dispatcher", "shared").split("\n")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}",
        "pinned": two_cores(),
        "command": command,
        "profile": p.name,
        "commit": commit or "unknown",
        "uncommitted": [line[3:] for line in dirty if line.strip()],
        "noise": NOISE,
        "pubsub": "envelope" if gateway_reads_envelopes() else "bare frames",
        "load_average": os.getloadavg(),
    }


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="the long profile (make bench FULL=1)")
    group.add_argument("--self-check", action="store_true", help="a few hundred frames, seconds")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--extras", action="store_true", help="with --self-check: the FULL=1 scenarios, tiny"
    )
    parser.add_argument(
        "--systems",
        default="limit,floor,tocsin",
        help=f"comma-separated, of {', '.join(SYSTEMS)} (tocsin2: --processes 2, unpinned)",
    )
    args = parser.parse_args()
    systems = args.systems.split(",")
    unknown = [name for name in systems if name not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    profile = SELF_CHECK if args.self_check else FULL if args.full else SHORT
    if args.extras:
        profile = dataclasses.replace(profile, full=True)
    started = time.monotonic()
    results = asyncio.run(run(profile, args.out, systems))
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    if sys.argv[1:] not in ([], ["--full"]):  # not what `make bench` runs: say what did
        results["meta"]["command"] = " ".join(["python -m bench", *sys.argv[1:]])
    table = report.write(results, args.out)
    print(table)
    if args.out == DEFAULT_OUT and not args.self_check:
        report.update_readme(ROOT / "README.md", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
