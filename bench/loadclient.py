"""The load client: every tab of a run in one process, on picows (a C WebSocket client), so
the client costs far less than the servers it loads. Driven by JSON lines on stdin, each
answered by one JSON line on stdout; `python -m bench.loadclient`.

It reports its own CPU share for every measured window: near 100% means the client, not the
server, set the pace, and the harness says so beside the figure."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sys
import time
from datetime import datetime
from typing import Any

import orjson
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

import tocsin_client

ACK_DELAY = 0.2  # as the browser client (web/src/client/tocsin.ts ACK_DELAY_MS)
ACK_TICK = 0.01  # how often due acks go out
MAX_SAMPLES = 400_000  # latency samples kept per window; beyond it every other one is kept


class Tab(WSListener):
    def __init__(self, load: Load, user: str, hello: bytes) -> None:
        super().__init__()
        self.load = load
        self.user = user
        self.hello = hello
        self.transport: WSTransport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.seq = 0
        self.acked = 0
        self.latest = 0  # welcome.lastSeq
        self.backlog = 0
        self.closed = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        transport.send(WSMsgType.TEXT, self.hello)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            self.load.closes[int(frame.get_close_code().value)] += 1
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        data = orjson.loads(frame.get_payload_as_bytes())
        kind = data["type"]
        if kind == "notification:new":
            self.load.on_new(self, data)
        elif kind == "notifications:batch":
            self.on_batch(data)
        elif kind == "welcome":
            self.latest = int(data.get("lastSeq") or 0)
        elif kind == "error":
            self.load.errors += 1

    def on_batch(self, data: dict[str, Any]) -> None:
        for notification in data["notifications"]:
            self.load.check_seq(self, int(notification["seq"]))
            self.backlog += 1
            self.load.backlog += 1
        if not data["more"] and not self.ready.done():
            self.ready.set_result(None)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True
        self.load.open_tabs -= 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready ({self.user})"))


class Load:
    def __init__(self) -> None:
        self.tabs: list[Tab] = []
        self.dirty: dict[Tab, float] = {}  # tab -> when its first unacked frame came
        self.closes: collections.Counter[int] = collections.Counter()
        self.errors = self.gaps = self.dups = self.backlog = self.open_tabs = 0
        self.total = 0  # live frames since start
        self.window = False
        self.window_count = 0
        self.since_begin = 0
        self.latencies: list[float] = []
        self.stride = 1
        self.clock = "sent"  # "sent": data.t; "created": the notification's createdAt
        self.cpu0 = self.wall0 = 0.0
        self.last_frame = time.monotonic()

    def on_new(self, tab: Tab, data: dict[str, Any]) -> None:
        now = time.time()
        self.check_seq(tab, int(data["seq"]))
        self.total += 1
        self.since_begin += 1
        self.last_frame = time.monotonic()
        if tab not in self.dirty:
            self.dirty[tab] = self.last_frame
        if not self.window:
            return
        self.window_count += 1
        if self.window_count % self.stride == 0:
            notification = data["notification"]
            if self.clock == "created":
                sent = datetime.fromisoformat(notification["createdAt"]).timestamp()
            else:
                sent = float(notification["data"]["t"])
            self.latencies.append(now - sent)
            if len(self.latencies) >= MAX_SAMPLES:
                self.latencies = self.latencies[::2]
                self.stride *= 2

    def check_seq(self, tab: Tab, seq: int) -> None:
        if seq <= tab.seq:
            self.dups += 1
            return
        if seq != tab.seq + 1:
            self.gaps += 1
        tab.seq = seq

    async def ack_loop(self) -> None:
        """Each tab acks ACK_DELAY after the first frame it has not acked, as a browser tab's
        own timer does: spread over time, not every tab at once (which real tabs never do)."""
        while True:
            await asyncio.sleep(ACK_TICK)
            due = time.monotonic() - ACK_DELAY
            dirty = self.dirty
            while dirty:
                tab, first = next(iter(dirty.items()))
                if first > due:
                    break
                del dirty[tab]
                if tab.transport is not None and not tab.closed and tab.seq > tab.acked:
                    tab.acked = tab.seq
                    ack = b'{"type":"ack","seq":%d}' % tab.seq
                    tab.transport.send(WSMsgType.TEXT, ack)

    # -- commands ------------------------------------------------------------------------

    async def connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        urls: list[str] = cmd["urls"]
        users: list[str] = cmd["users"]
        tabs = int(cmd.get("tabs", 1))
        secret: str | None = cmd.get("secret")
        last_seq = cmd.get("last_seq")
        hellos = []
        for user in users:
            token = tocsin_client.user_token(user, secret, ttl=7200) if secret else ""
            hello = {"type": "hello", "v": 1, "token": token, "lastSeq": last_seq, "user": user}
            hellos.append((user, orjson.dumps(hello)))
        gate = asyncio.Semaphore(int(cmd.get("concurrency", 64)))
        timeout = float(cmd.get("timeout", 30))
        times: list[float] = []
        failures: collections.Counter[str] = collections.Counter()

        async def one(index: int, user: str, hello: bytes) -> None:
            async with gate:
                started = time.monotonic()
                tab = Tab(self, user, hello)
                try:
                    async with asyncio.timeout(timeout):
                        await ws_connect(
                            lambda: tab,
                            urls[index % len(urls)],
                            extra_headers={"Sec-WebSocket-Protocol": "tocsin.v1"},
                            websocket_handshake_timeout=timeout,
                            max_frame_size=1 << 20,
                        )
                        self.open_tabs += 1
                        await tab.ready
                except Exception as exc:
                    failures[type(exc).__name__] += 1
                    return
                self.tabs.append(tab)
                times.append(time.monotonic() - started)

        cpu0, wall0 = time.process_time(), time.monotonic()
        jobs = [one(i, user, hello) for i, (user, hello) in enumerate(hellos) for _ in range(tabs)]
        await asyncio.gather(*jobs)
        wall = time.monotonic() - wall0
        return {
            "connected": len(times),
            "failed": sum(failures.values()),
            "failures": dict(failures),
            "seconds": wall,
            "connect_ms": percentiles(times, 1000.0),
            "client_cpu": (time.process_time() - cpu0) / max(wall, 1e-9),
            "backlog": self.backlog,
        }

    def begin(self) -> dict[str, Any]:
        self.window, self.window_count, self.since_begin = True, 0, 0
        self.latencies, self.stride = [], 1
        self.cpu0, self.wall0 = time.process_time(), time.monotonic()
        return {"ok": True}

    def end(self) -> dict[str, Any]:
        self.window = False
        wall = time.monotonic() - self.wall0
        return {
            "received": self.window_count,
            "seconds": wall,
            "latency_ms": percentiles(self.latencies, 1000.0),
            "client_cpu": (time.process_time() - self.cpu0) / max(wall, 1e-9),
        }

    async def drain(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Until `expected` frames arrived since begin, or none for `quiet` s, or `timeout`."""
        expected, quiet = int(cmd["expected"]), float(cmd.get("quiet", 0.5))
        deadline = time.monotonic() + float(cmd.get("timeout", 5))
        while self.since_begin < expected and time.monotonic() < deadline:
            if time.monotonic() - self.last_frame > quiet:
                break
            await asyncio.sleep(0.05)
        return {"received": self.since_begin}

    def stats(self) -> dict[str, Any]:
        return {
            "tabs": len(self.tabs),
            "open": sum(1 for tab in self.tabs if not tab.closed),
            "total": self.total,
            "gaps": self.gaps,
            "dups": self.dups,
            "errors": self.errors,
            "backlog": self.backlog,
            "closes": {str(k): v for k, v in self.closes.items()},
        }

    async def close_all(self, cmd: dict[str, Any]) -> dict[str, Any]:
        for tab in self.tabs:
            if tab.transport is not None and not tab.closed:
                tab.transport.send_close()
                tab.transport.disconnect()
        waits = [tab.transport.wait_disconnected() for tab in self.tabs if tab.transport]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), float(cmd.get("timeout", 10)))
        closed = sum(1 for tab in self.tabs if tab.closed)
        self.tabs = []
        return {"closed": closed}


def percentiles(values: list[float], scale: float) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(values)
    n = len(ordered)
    return {
        "p50": ordered[n // 2] * scale,
        "p99": ordered[min(n - 1, int(n * 0.99))] * scale,
        "max": ordered[-1] * scale,
        "n": n,
    }


async def serve() -> None:
    load = Load()
    acks = asyncio.create_task(load.ack_loop())
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        name = cmd["cmd"]
        if name == "exit":
            break
        if name == "connect":
            reply = await load.connect(cmd)
        elif name == "begin":
            load.clock = cmd.get("clock", "sent")
            reply = load.begin()
        elif name == "end":
            reply = load.end()
        elif name == "drain":
            reply = await load.drain(cmd)
        elif name == "stats":
            reply = load.stats()
        elif name == "close_all":
            reply = await load.close_all(cmd)
        else:
            reply = {"error": f"unknown command {name!r}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    acks.cancel()


if __name__ == "__main__":
    uvloop.run(serve())
