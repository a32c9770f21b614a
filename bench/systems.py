"""The systems under test, each started on the server core, and how load is offered to each:
the limit makes its own frames on command; the floor and Tocsin get them through Redis from
this process's publisher (on the load core).

Tocsin gets exactly what its dispatcher publishes: the `notification:new` frame behind the
routing line of shared/envelope.py (`n <seq> <created_ms>`). The floor relays what it gets to
the sockets as it is, so it gets the bare frame: the same JSON bytes, without the ~20-byte
routing line it has no use for (our stack with no features, no routing either)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol

import httpx
import orjson
from websockets.asyncio.client import connect

from bench.frames import Template, browser_template, created_text
from bench.procs import ROOT, Server, free_port, python, spawn
from shared import envelope
from shared.broker.link import Endpoint
from shared.broker.pipelined import Pipelined
from shared.broker.redis import CHUNK

TICK = 0.001  # publishes go out every millisecond: a burst of 5 ms would be latency of its own


@dataclass
class Stack:
    """The shared back ends and secrets of one bench run."""

    redis_url: str
    database_url: str
    jwt_secret: str
    producer_key: str
    log_dir: Path
    run_id: str

    def tocsin_env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "TOCSIN_JWT_SECRET": self.jwt_secret,
            "TOCSIN_PRODUCER_KEYS": self.producer_key,
        }


class RedisPublisher:
    """Publishes `rate` frames/s round-robin over users, in 5 ms ticks, one pipelined write a
    tick; with `routed`, each behind its envelope routing line (what Tocsin's dispatcher
    publishes). It publishes as the dispatcher does (shared/broker/pipelined.py: packed by
    hand, replies read by hiredis), about a tenth of redis-py's pipeline's CPU a message,
    which it shares the load core with the client and Redis."""

    def __init__(self, redis_url: str, template: Template, routed: bool) -> None:
        self.commands = Pipelined(Endpoint.from_url(redis_url), connect_timeout=10)
        self.template = template
        self.routed = routed
        self.seqs: dict[str, int] = {}

    async def run(self, users: list[str], rate: float, duration: float) -> int:
        start = time.monotonic()
        sent = turn = 0
        while (elapsed := time.monotonic() - start) < duration:
            due = int(rate * elapsed) - sent
            if due > 0:
                now = time.time()
                created, created_ms = created_text(now), int(now * 1000)
                messages = []
                for _ in range(due):
                    user = users[turn % len(users)]
                    turn += 1
                    seq = self.seqs[user] = self.seqs.get(user, 0) + 1
                    frame = self.template.fill(user, seq, now, created)
                    if self.routed:
                        frame = envelope.notification(seq, created_ms, frame)
                    messages.append((user, frame))
                await self.commands.publish_many(messages, CHUNK)
                sent += due
            await asyncio.sleep(TICK)
        return sent

    async def close(self) -> None:
        self.commands.close()


@cache
def gateway_reads_envelopes() -> bool:
    """Whether the gateway under test reads the envelope (its code loads shared/envelope.py).

    Issue 9 moves the dispatcher and the gateway to the envelope in separate commits; a gateway
    from before reads bare frames, as the dispatcher published them then. Asked once, of a
    fresh interpreter (this one has loaded the module itself)."""
    probe = "import sys, gateway.app; print('shared.envelope' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip() == "True"


class Pusher(Protocol):
    async def run(self, users: list[str], rate: float, duration: float) -> int: ...
    async def close(self) -> None: ...


@dataclass
class System:
    name: str
    label: str
    servers: list[Server]
    secret: str | None  # JWT secret when the system checks tokens
    publisher: Pusher | None = None
    notes: list[str] = field(default_factory=list)  # shown beside its figures
    pinned: bool = True  # on the server core alone

    @property
    def urls(self) -> list[str]:
        return [server.ws_url for server in self.servers]

    def users(self, stack: Stack, count: int, tag: str = "") -> list[str]:
        return [f"b{stack.run_id}-{self.name}{tag}-{i:05d}" for i in range(count)]

    async def push(self, users: list[str], rate: float, duration: float) -> int:
        """Offer `rate` frames/s for `duration` s; how many were offered."""
        if self.publisher is not None:
            return await self.publisher.run(users, rate, duration)
        async with connect(self.urls[0], compression=None, open_timeout=10) as ws:
            await ws.send(orjson.dumps({"type": "bench-run", "rate": rate, "duration": duration}))
            reply = orjson.loads(await asyncio.wait_for(ws.recv(), duration + 30))
        return int(reply["generated"])

    async def stop(self) -> None:
        if self.publisher is not None:
            await self.publisher.close()
        for server in self.servers:
            await asyncio.to_thread(server.stop)


async def start_limit(stack: Stack) -> System:
    port = free_port()
    server = spawn("limit", python("-m", "bench.limit_server", str(port)), {}, port, stack.log_dir)
    return System("limit", "bare `websockets` push server, no Redis (the limit)", [server], None)


async def start_floor(stack: Stack) -> System:
    port = free_port()
    args = python("-m", "bench.floor_server", str(port), stack.redis_url)
    server = spawn(
        "floor", args, {}, port, stack.log_dir, ready_url=f"http://127.0.0.1:{port}/healthz"
    )
    publisher = RedisPublisher(stack.redis_url, browser_template(), routed=False)
    label = "minimal Starlette + uvicorn relay, one redis-py pub/sub (the floor)"
    return System("floor", label, [server], None, publisher)


def start_gateway(stack: Stack, processes: int = 1) -> Server:
    """`tocsin gateway` pinned to the server core; with processes > 1, `--processes N` on
    every core (the load's too), measured with its children."""
    port = free_port()
    env = {
        **stack.tocsin_env(),
        "TOCSIN_GATEWAY_PORT": str(port),
        "TOCSIN_NODE_ID": f"bench-{stack.run_id}-gw{processes}",
    }
    args = python("-m", "tocsin", "gateway")
    if processes > 1:
        args += ["--processes", str(processes)]
    server = spawn(
        f"gateway-x{processes}",
        args,
        env,
        port,
        stack.log_dir,
        core=0 if processes == 1 else None,
        ready_url=f"http://127.0.0.1:{port}/readyz",
        tree=processes > 1,
    )
    if processes > 1:
        nodes = {f"{env['TOCSIN_NODE_ID']}-p{k}" for k in range(processes)}
        _wait_nodes(server, nodes)
    return server


def _wait_nodes(server: Server, nodes: set[str], within: float = 30) -> None:
    """Until every node answers on the shared port (each request on a new connection, which
    the kernel hands to any of them)."""
    seen: set[str] = set()
    deadline = time.monotonic() + within
    while not nodes <= seen:
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop(5)
            raise RuntimeError(f"gateway nodes {sorted(nodes - seen)} never answered")
        try:
            url = f"http://127.0.0.1:{server.port}/healthz"
            seen.add(httpx.get(url, timeout=2).json()["node"])
        except httpx.HTTPError:
            time.sleep(0.1)


async def start_tocsin(stack: Stack, processes: int = 1) -> System:
    server = await asyncio.to_thread(start_gateway, stack, processes)
    routed = await asyncio.to_thread(gateway_reads_envelopes)
    publisher = RedisPublisher(stack.redis_url, browser_template(), routed)
    if processes == 1:
        return System("tocsin", "Tocsin gateway", [server], stack.jwt_secret, publisher)
    label = f"Tocsin gateway, {processes} processes"
    notes = [
        f"`--processes {processes}` on one port, unpinned: the load client, publisher and "
        "Redis share the same cores; server CPU counts every process"
    ]
    return System(
        f"tocsin{processes}", label, [server], stack.jwt_secret, publisher, notes, pinned=False
    )
