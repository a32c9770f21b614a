"""The gateway's pub/sub read path alone: CPU microseconds per message for reading frames
through the node's Broker, RESP2 against RESP3, with whatever parser redis-py picks (run
once more with PYTHONPATH pointing at a `hiredis` that fails to import, to compare).

    .venv/bin/python -m tests.perf.pubsub_read --messages 20000

Publishes the frames first (Redis buffers them for the subscriber), then times the reading
in process CPU time, which a busy shared machine disturbs far less than wall time."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid

import redis.utils
import uvloop

from gateway import broker as broker_module
from gateway.broker import Broker
from tests.perf.gateway_load import _frame, _resp


async def one(redis_url: str, protocol: int, messages: int, users: int) -> float:
    names = [f"perf-{uuid.uuid4().hex[:10]}" for _ in range(users)]
    channels = [f"user:{name}" for name in names]
    got = 0
    done = asyncio.Event()

    def on_message(channel: str, data: bytes) -> None:
        nonlocal got
        got += 1
        if got == messages:
            done.set()

    broker_module.PUBSUB_PROTOCOL = protocol
    node = Broker(redis_url, f"perf-{uuid.uuid4().hex[:6]}", on_message, lambda: channels, _noop)
    task = asyncio.create_task(node.run())
    host, port = redis_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        await asyncio.wait_for(node.connected.wait(), 10)
        now = time.time()
        commands = b"".join(
            _resp(f"user:{name}".encode(), _frame(name, i // users + 1, now))
            for i, name in ((i, names[i % users]) for i in range(messages))
        )
        before = time.process_time()
        writer.write(commands)
        await asyncio.wait_for(done.wait(), 60)
        return (time.process_time() - before) * 1e6 / messages
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await node.close()
        writer.close()
        del reader


def _noop() -> None:
    pass


async def main(args: argparse.Namespace) -> None:
    url = os.environ["REDIS_URL"]
    results: dict[str, list[float]] = {"resp2": [], "resp3": []}
    for _ in range(args.runs):
        for protocol in (2, 3):
            cost = await one(url, protocol, args.messages, args.users)
            results[f"resp{protocol}"].append(cost)
    print(
        json.dumps(
            {
                "hiredis": redis.utils.HIREDIS_AVAILABLE,
                "cpu_us_per_message_median": {
                    k: round(statistics.median(v), 2) for k, v in results.items()
                },
                "runs": {k: [round(x, 2) for x in v] for k, v in results.items()},
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    uvloop.run(main(parser.parse_args()))
