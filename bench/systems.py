"""The three systems under test, each started on the server core, and how load is offered to
each: the limit makes its own frames on command; the floor and Tocsin get them through Redis
from this process's publisher (on the load core), exactly as a dispatcher would publish."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from bench.frames import SENTINEL_USER, Template, browser_template, created_text
from bench.procs import Server, free_port, python, spawn
from dispatcher.publisher import Publisher
from shared import keys

TICK = 0.005


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
    """Publishes `rate` frames/s round-robin over users, in 5 ms ticks, one pipeline a tick."""

    def __init__(self, redis_url: str, template: Template, channel: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url)
        self.template = template
        self.channel = channel  # holds SENTINEL_USER where the user id goes
        self.seqs: dict[str, int] = {}

    async def run(self, users: list[str], rate: float, duration: float) -> int:
        start = time.monotonic()
        sent = turn = 0
        channels = {user: self.channel.replace(SENTINEL_USER, user) for user in users}
        while (elapsed := time.monotonic() - start) < duration:
            due = int(rate * elapsed) - sent
            if due > 0:
                now = time.time()
                created = created_text(now)
                pipe = self.redis.pipeline(transaction=False)
                for _ in range(due):
                    user = users[turn % len(users)]
                    turn += 1
                    seq = self.seqs[user] = self.seqs.get(user, 0) + 1
                    pipe.publish(channels[user], self.template.fill(user, seq, now, created))
                await pipe.execute()
                sent += due
            await asyncio.sleep(TICK)
        return sent

    async def close(self) -> None:
        await self.redis.aclose()


async def dispatcher_template(redis_url: str) -> tuple[Template, str]:
    """What the dispatcher's own publisher sends for a notification, and on which channel,
    caught once on Redis: the bench then publishes the same bytes with fresh values."""
    from bench.frames import sentinel_notification

    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        await pubsub.psubscribe("*")
        await Publisher(client, 5.0).publish_all([sentinel_notification()])
        async with asyncio.timeout(5):
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None and SENTINEL_USER in message["channel"].decode():
                    return Template(message["data"]), message["channel"].decode()
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


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
    notes: list[str] = field(default_factory=list)

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
    publisher = RedisPublisher(
        stack.redis_url, browser_template(), keys.user_channel(SENTINEL_USER)
    )
    label = "minimal Starlette + uvicorn relay, one redis-py pub/sub (the floor)"
    return System("floor", label, [server], None, publisher)


def start_gateway(stack: Stack, index: int, core: int | None) -> Server:
    port = free_port()
    env = {
        **stack.tocsin_env(),
        "TOCSIN_GATEWAY_PORT": str(port),
        "TOCSIN_NODE_ID": f"bench-{stack.run_id}-gw{index}",
    }
    ready = f"http://127.0.0.1:{port}/readyz"
    return spawn(
        f"gateway{index}",
        python("-m", "tocsin", "gateway"),
        env,
        port,
        stack.log_dir,
        core=core,
        ready_url=ready,
    )


async def start_tocsin(stack: Stack, gateways: int = 1) -> System:
    cores: list[int | None] = [0] if gateways == 1 else [None] * gateways
    servers = [await asyncio.to_thread(start_gateway, stack, i, c) for i, c in enumerate(cores)]
    template, channel = await dispatcher_template(stack.redis_url)
    name = "tocsin" if gateways == 1 else f"tocsin{gateways}"
    label = "Tocsin gateway" if gateways == 1 else f"Tocsin, {gateways} gateway processes"
    publisher = RedisPublisher(stack.redis_url, template, channel)
    return System(name, label, servers, stack.jwt_secret, publisher)
