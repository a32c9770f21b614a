"""The gateway's pub/sub read path alone: CPU microseconds per message read, for

- old: redis-py's PubSub.get_message() loop (RESP2, hiredis), as gateway/broker.py read;
- new: shared.broker.RedisBroker's own link (asyncio.Protocol + hiredis, every reply of a read
  dispatched in one wake-up).

    .venv/bin/python -m tests.perf.pubsub_read --messages 100000

A thread publishes envelopes (~250 bytes) over a raw socket in windows (so Redis never holds
more than a few MB for the subscriber), and the event loop's thread CPU time is measured from
the first publish to the last message handed to on_message: only the reading side counts."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import redis.utils
import uvloop

from shared import envelope, keys
from shared.broker import RedisBroker
from shared.broker.link import command
from tests.perf.gateway_load import _frame

WINDOW = 5000  # messages per publishing window; two windows in flight at most


class Counter:
    """on_message for both readers: counts, and lets the publisher go on every window."""

    def __init__(self, messages: int, window: int) -> None:
        self.messages = messages
        self.window = window
        self.got = 0
        self.done = asyncio.Event()
        self.subscribed = asyncio.Event()  # the reader holds every user's channel
        self.slots = threading.Semaphore(2)

    def __call__(self, user: str, data: bytes) -> None:
        self.got += 1
        if self.got % self.window == 0:
            self.slots.release()
        if self.got == self.messages:
            self.done.set()


def commands(users: list[str], messages: int) -> list[bytes]:
    now = time.time()
    out = []
    for i in range(messages):
        user = users[i % len(users)]
        seq = i // len(users) + 1
        data = envelope.notification(seq, int(now * 1000), _frame(user, seq, now))
        out.append(command(b"PUBLISH", keys.user_channel(user).encode(), data))
    return out


def publish(redis_url: str, payload: list[bytes], counter: Counter) -> None:
    """In a thread: one window at a time once the reader has room; replies read and dropped."""
    where = urlsplit(redis_url)
    with socket.create_connection((where.hostname or "127.0.0.1", where.port or 6379)) as sock:
        replies = 0
        for start in range(0, len(payload), counter.window):
            counter.slots.acquire()
            window = payload[start : start + counter.window]
            sock.sendall(b"".join(window))
            while replies < start + len(window):
                replies += sock.recv(1 << 20).count(b"\r\n")


async def measure(
    redis_url: str, users: list[str], messages: int, reader: Callable[[Counter], Awaitable[None]]
) -> tuple[float, float]:
    """(CPU µs per message on the loop's thread, wall seconds)."""
    counter = Counter(messages, WINDOW)
    payload = commands(users, messages)
    task = asyncio.create_task(reader(counter))
    await asyncio.wait_for(counter.subscribed.wait(), 30)
    cpu, wall = time.thread_time(), time.perf_counter()
    thread = threading.Thread(target=publish, args=(redis_url, payload, counter), daemon=True)
    thread.start()
    await asyncio.wait_for(counter.done.wait(), 120)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    thread.join(10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return cpu * 1e6 / messages, wall


def old_reader(redis_url: str, users: list[str]) -> Callable[[Counter], Awaitable[None]]:
    async def read(counter: Counter) -> None:
        client = aioredis.Redis.from_url(redis_url, protocol=2)
        pubsub = client.pubsub()
        try:
            channels = [keys.user_channel(user) for user in users]
            for start in range(0, len(channels), 500):
                await pubsub.subscribe(*channels[start : start + 500])
            confirmed = 0
            while confirmed < len(channels):
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "subscribe":
                    confirmed += 1
            counter.subscribed.set()
            while True:  # the old Broker._listen/_handle, minus the probe
                message = await pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] == "message":
                    channel = message["channel"]
                    name = channel.decode() if isinstance(channel, bytes) else str(channel)
                    counter(keys.user_from_channel(name), message["data"])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()

    return read


def new_reader(redis_url: str, users: list[str]) -> Callable[[Counter], Awaitable[None]]:
    async def read(counter: Counter) -> None:
        broker = RedisBroker(
            redis_url,
            node_id=f"perf-{uuid.uuid4().hex[:6]}",
            on_message=counter,
            users=lambda: users,
        )
        task = asyncio.create_task(broker.run())
        try:
            await broker.connected.wait()
            counter.subscribed.set()
            await task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await broker.close()

    return read


async def main(args: argparse.Namespace) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    results: dict[str, list[float]] = {"old": [], "new": []}
    walls: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(args.runs):
        users = [f"perf-{uuid.uuid4().hex[:10]}" for _ in range(args.users)]
        for name, make in (("old", old_reader), ("new", new_reader)):
            cost, wall = await measure(url, users, args.messages, make(url, users))
            results[name].append(cost)
            walls[name].append(wall)
    medians = {k: round(statistics.median(v), 2) for k, v in results.items()}
    print(
        json.dumps(
            {
                "messages": args.messages,
                "users": args.users,
                "hiredis": redis.utils.HIREDIS_AVAILABLE,
                "cpu_us_per_message_median": medians,
                "speedup": round(medians["old"] / medians["new"], 2),
                "runs_cpu_us": {k: [round(x, 2) for x in v] for k, v in results.items()},
                "runs_wall_s": {k: [round(x, 3) for x in v] for k, v in walls.items()},
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    uvloop.run(main(parser.parse_args()))
