"""Idle capacity: sockets connected in chunks (each fully through hello, welcome and its
backlog: JWT, presence, subscribe and the backlog query on Tocsin), the server's RSS after
each chunk; RSS per socket and the connect rate over the whole count."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.procs import LoadClient
from bench.systems import Stack, System

SETTLE = 1.0  # seconds after a chunk before RSS is read


async def capacity(
    system: System,
    client: LoadClient,
    stack: Stack,
    sockets: int,
    chunks: int = 5,
    concurrency: int = 50,
) -> dict[str, Any]:
    server = system.servers[0]
    await asyncio.sleep(SETTLE)
    base = server.rss()
    points = [{"sockets": 0, "rss": base}]
    users = system.users(stack, sockets, "-idle")
    size = -(-sockets // chunks)
    seconds = 0.0
    connected = failed = 0
    connect_ms: list[dict[str, Any]] = []
    for start in range(0, sockets, size):
        reply = await client.call(
            "connect",
            wait=600,
            urls=system.urls,
            users=users[start : start + size],
            secret=system.secret,
            concurrency=concurrency,
            timeout=60,
        )
        seconds += reply["seconds"]
        connected += reply["connected"]
        failed += reply["failed"]
        connect_ms.append(reply["connect_ms"])
        await asyncio.sleep(SETTLE)
        points.append({"sockets": connected, "rss": server.rss()})
    stats = await client.call("stats")
    await client.call("close_all", wait=120, timeout=60)
    per_socket = (points[-1]["rss"] - base) / max(connected, 1)
    return {
        "sockets": sockets,
        "connected": connected,
        "failed": failed,
        "connect_seconds": seconds,
        "connects_per_s": connected / max(seconds, 1e-9),
        "rss_base": base,
        "rss_per_socket_kib": per_socket / 1024,
        "points": points,
        "chunk_connect_ms": connect_ms,
        "concurrency": concurrency,
        "client_stats": stats,
    }
