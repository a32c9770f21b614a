"""The dispatcher under load: single sends at a fixed concurrency (one notification per
request, each to its own user in turn) and one bulk request to many users.

Requests go out on plain keep-alive HTTP/1.1 connections written by hand (no HTTP library on
the load core), so the client costs little beside the dispatcher it measures."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.frames import BODY, TITLE, TYPE
from bench.loadclient import percentiles
from bench.procs import Server, free_port, pin_self, python, spawn
from bench.systems import Stack

PATH = "/v1/notifications"


def start_dispatcher(stack: Stack, root: Path | None = None) -> Server:
    """A dispatcher on the server core; `root`: another checkout's code (a before/after run)."""
    port = free_port()
    env = {**stack.tocsin_env(), "TOCSIN_DISPATCHER_PORT": str(port)}
    command = python("-m", "tocsin", "dispatcher")
    if root is not None:
        command = ["sh", "-c", f'cd "{root}" && exec "$0" "$@"', *command]
    return spawn(
        "dispatcher",
        command,
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


async def _standalone(args: argparse.Namespace) -> dict[str, Any]:
    """The dispatcher scenario alone against DATABASE_URL / REDIS_URL, `rounds` times."""
    from shared.migrate import migrate_url

    database_url, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    await migrate_url(database_url)
    log_dir = Path(tempfile.mkdtemp(prefix="tocsin-bench-dispatch-"))
    stack = Stack(
        redis_url, database_url, secrets.token_hex(16), secrets.token_hex(16), log_dir, ""
    )
    server = await asyncio.to_thread(start_dispatcher, stack, args.root)
    rounds: list[dict[str, Any]] = []
    try:
        for turn in range(args.rounds):
            run_id = secrets.token_hex(3)
            users = [f"b{run_id}-send-{i:05d}" for i in range(args.users)]
            one = await singles(server, stack, users, args.concurrency, args.seconds)
            bulk_users = [f"b{run_id}-bulk-{i:05d}" for i in range(args.bulk)]
            many = await bulk(server, stack, bulk_users) if args.bulk else {}
            rounds.append({"singles": one, "bulk": many})
            print(
                f"round {turn + 1}: {one['sends_per_s']:,.0f} sends/s"
                f" p50 {one['latency_ms']['p50']:.1f} ms p99 {one['latency_ms']['p99']:.1f} ms"
                f" server cpu {one['server_cpu']:.0%}"
                f" ({one['server_cpu'] / max(one['sends_per_s'], 1) * 1e6:,.0f} us a send)"
                f" statuses {one['statuses']};"
                f" bulk {many.get('notifications_per_s', 0):,.0f}/s"
                f" ({many.get('seconds', 0):.3f} s, status {many.get('status')})",
                flush=True,
            )
    finally:
        await asyncio.to_thread(server.stop)
    return {"rounds": rounds}


def main() -> int:
    """`python -m bench.dispatch`: the dispatcher scenario alone, for before/after figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch", description=main.__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--bulk", type=int, default=10_000, help="users in the bulk request")
    parser.add_argument("--root", type=Path, help="run the dispatcher from this checkout")
    args = parser.parse_args()
    pin_self()
    result = asyncio.run(_standalone(args))
    sends = sorted(r["singles"]["sends_per_s"] for r in result["rounds"])
    p99 = sorted(r["singles"]["latency_ms"]["p99"] for r in result["rounds"])
    bulks = sorted(r["bulk"].get("notifications_per_s", 0.0) for r in result["rounds"])
    middle = len(sends) // 2
    print(
        f"median: {sends[middle]:,.0f} sends/s, p99 {p99[middle]:.1f} ms;"
        f" bulk {bulks[middle]:,.0f} notifications/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
