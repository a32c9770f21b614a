"""The dispatcher under load: single sends at a fixed concurrency (one notification per
request, each to its own user in turn) and one bulk request to many users.

Requests go out on plain keep-alive HTTP/1.1 connections written by hand (no HTTP library on
the load core), so the client costs little beside the dispatcher it measures."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson

from bench.frames import BODY, TITLE, TYPE
from bench.loadclient import percentiles
from bench.procs import Server, free_port, python, spawn
from bench.systems import Stack

PATH = "/v1/notifications"


def start_dispatcher(stack: Stack) -> Server:
    port = free_port()
    env = {**stack.tocsin_env(), "TOCSIN_DISPATCHER_PORT": str(port)}
    return spawn(
        "dispatcher",
        python("-m", "tocsin", "dispatcher"),
        env,
        port,
        stack.log_dir,
        ready_url=f"http://127.0.0.1:{port}/readyz",
    )


def request(key: str, payload: dict[str, Any]) -> bytes:
    body = orjson.dumps(payload)
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    writer.write(data)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def singles(
    server: Server,
    stack: Stack,
    users: list[str],
    concurrency: int,
    seconds: float,
    limit: int = 10**9,
) -> dict[str, Any]:
    """Sends for `seconds`, or until `limit` were made, from `concurrency` connections."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    turn = iter(range(limit))
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            while time.monotonic() < deadline:
                index = next(turn, None)
                if index is None:
                    return
                user = users[index % len(users)]
                payload = {"user_id": user, "type": TYPE, "title": TITLE, "body": BODY}
                started = time.perf_counter()
                status = await asyncio.wait_for(
                    _exchange(reader, writer, request(stack.producer_key, payload)), 30
                )
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    cpu0, wall0, own0 = server.cpu_seconds(), time.monotonic(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.monotonic() - wall0
    return {
        "concurrency": concurrency,
        "seconds": wall,
        "sent": statuses.get(201, 0),
        "statuses": {str(k): v for k, v in statuses.items()},
        "sends_per_s": statuses.get(201, 0) / wall,
        "latency_ms": percentiles(latencies, 1000.0),
        "server_cpu": (server.cpu_seconds() - cpu0) / wall,
        "client_cpu": (time.process_time() - own0) / wall,
    }


async def bulk(server: Server, stack: Stack, users: list[str]) -> dict[str, Any]:
    payload = {"user_ids": users, "type": TYPE, "title": TITLE, "body": BODY}
    headers = {"Authorization": f"Bearer {stack.producer_key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        started = time.perf_counter()
        response = await http.post(
            PATH, content=orjson.dumps(payload), headers=headers, timeout=300
        )
        seconds = time.perf_counter() - started
    return {
        "users": len(users),
        "status": response.status_code,
        "seconds": seconds,
        "notifications_per_s": len(users) / seconds if response.status_code == 201 else 0.0,
    }


class Producer:
    """Offers single sends at a rate through the dispatcher (end to end: commit, publish,
    gateway, socket), from `connections` keep-alive connections; duck-types RedisPublisher."""

    def __init__(self, server: Server, stack: Stack, connections: int = 32) -> None:
        self.server = server
        self.stack = stack
        self.connections = connections

    async def run(self, users: list[str], rate: float, duration: float) -> int:
        due: asyncio.Queue[str | None] = asyncio.Queue(maxsize=self.connections * 4)
        made = 0

        async def worker() -> None:
            nonlocal made
            reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
            try:
                while (user := await due.get()) is not None:
                    payload = {"user_id": user, "type": TYPE, "title": TITLE, "body": BODY}
                    status = await asyncio.wait_for(
                        _exchange(reader, writer, request(self.stack.producer_key, payload)), 30
                    )
                    made += status == 201
            finally:
                writer.close()

        workers = [asyncio.create_task(worker()) for _ in range(self.connections)]
        start = time.monotonic()
        queued = turn = 0
        while (elapsed := time.monotonic() - start) < duration:
            for _ in range(int(rate * elapsed) - queued):
                queued += 1  # on schedule, taken or not: a full queue means it was refused
                if due.full():
                    continue  # the dispatcher is behind; this send is not offered
                due.put_nowait(users[turn % len(users)])
                turn += 1
            await asyncio.sleep(0.005)
        for _ in workers:
            await due.put(None)
        await asyncio.gather(*workers)
        return made

    async def close(self) -> None:
        return None
