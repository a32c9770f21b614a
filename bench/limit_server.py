"""The limit: a bare `websockets` push server. No Redis, no store, no auth: it pushes frames it
makes itself (Tocsin's `notification:new` bytes) to the connected sockets when told to.

A socket's first frame is a hello naming its user (`hello.user`); the server answers welcome
and an empty backlog batch as Tocsin does. A `bench-run` first frame is a command instead:
push `rate` frames/s for `duration` s, round-robin over the connected users, then answer how
many were generated. `python -m bench.limit_server PORT`."""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.frames import browser_template, created_text

TICK = 0.002
BATCH = orjson.dumps({"type": "notifications:batch", "notifications": [], "more": False})


class PushServer:
    def __init__(self) -> None:
        self.users: dict[str, set[ServerConnection]] = {}
        self.seqs: dict[str, int] = {}
        self.template = browser_template()

    async def handler(self, ws: ServerConnection) -> None:
        first = orjson.loads(await ws.recv())
        if first.get("type") == "bench-run":
            generated = await self.push(float(first["rate"]), float(first["duration"]))
            await ws.send(orjson.dumps({"generated": generated}), text=True)
            return
        user = str(first["user"])
        self.users.setdefault(user, set()).add(ws)
        try:
            welcome = {"type": "welcome", "v": 1, "userId": user, "lastSeq": 0}
            await ws.send(orjson.dumps(welcome), text=True)
            await ws.send(BATCH, text=True)
            async for _ in ws:  # acks and pings: read and dropped
                pass
        finally:
            conns = self.users.get(user)
            if conns is not None:
                conns.discard(ws)
                if not conns:
                    del self.users[user]

    async def push(self, rate: float, duration: float) -> int:
        """`rate` frames/s for `duration` s; how many were made (short of the ask when this
        process is the bottleneck)."""
        users = list(self.users)
        if not users:
            return 0
        start = time.monotonic()
        sent = 0
        turn = 0
        while (elapsed := time.monotonic() - start) < duration:
            due = int(rate * elapsed) - sent
            now = time.time()
            created = created_text(now)
            for _ in range(due):
                user = users[turn % len(users)]
                turn += 1
                seq = self.seqs.get(user, 0) + 1
                self.seqs[user] = seq
                frame = self.template.fill(user, seq, now, created)
                # broadcast() writes without awaiting: the fastest push websockets offers.
                broadcast(self.users.get(user, ()), frame, text=True)
            sent += max(due, 0)
            await asyncio.sleep(TICK)
        return sent


async def main(port: int) -> None:
    server = PushServer()
    async with serve(
        server.handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=65_536,
        ping_interval=None,
        backlog=2048,  # uvicorn's default, as the others have
    ) as running:
        await running.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
