"""A micro-benchmark of one gateway node: N picows tabs on loopback, a publisher writing
prebuilt `notification:new` frames straight to Redis (raw RESP PUBLISH, no dispatcher).

    .venv/bin/python -m tests.perf.gateway_load --users 2000 --runs 3

Starts `python -m tocsin gateway` pinned to core 0 (taskset), pins itself to core 1, connects
every tab at once (a burst: presence must not fail), then per run measures delivered frames/s
at saturation (the publisher keeps at most --window frames in flight) and, when --rate is
given, p50/p99 latency (publish to receipt) at that offered rate. Prints one JSON line per
run and the medians; the gateway's warnings and errors are counted from its log at the end.
Not a test: no assertion on timing. Needs DATABASE_URL and REDIS_URL."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

import tocsin_client
from shared import envelope
from tests.support.services import free_port

SECRET = "perf-secret-" + uuid.uuid4().hex
ACK_INTERVAL = 0.2  # as the browser client


class Tab(WSListener):
    def __init__(self, load: Load, user: str) -> None:
        super().__init__()
        self.load = load
        self.user = user
        self.transport: WSTransport | None = None
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.seq = 0
        self.acked = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        token = tocsin_client.user_token(self.user, SECRET, ttl=3600)
        transport.send(WSMsgType.TEXT, orjson.dumps({"type": "hello", "v": 1, "token": token}))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            self.load.closes += 1
            transport.disconnect()
            return
        data = orjson.loads(frame.get_payload_as_bytes())
        kind = data["type"]
        if kind == "notification:new":
            seq = data["seq"]
            if seq != self.seq + 1:
                self.load.out_of_order += 1
            self.seq = seq
            self.load.received += 1
            if self.load.sampling:
                self.load.latencies.append(time.time() - data["notification"]["data"]["t"])
        elif kind == "notifications:batch":
            if not self.welcomed.done() and not data["more"]:
                self.welcomed.set_result(None)
        elif kind == "error":
            self.load.errors += 1

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError("closed before welcome"))

    def ack(self) -> None:
        if self.seq > self.acked and self.transport is not None:
            self.transport.send(WSMsgType.TEXT, b'{"type":"ack","seq":%d}' % self.seq)
            self.acked = self.seq


class Load:
    def __init__(self, users: list[str]) -> None:
        self.users = users
        self.tabs: list[Tab] = []
        self.received = 0
        self.published = 0
        self.out_of_order = 0
        self.closes = 0
        self.errors = 0
        self.sampling = False
        self.latencies: list[float] = []
        self.seqs = dict.fromkeys(users, 0)
        self._redis: asyncio.StreamWriter | None = None
        self._next = 0

    async def connect(self, url: str, tabs: int, burst: int) -> float:
        started = time.monotonic()
        gate = asyncio.Semaphore(burst)

        async def one(user: str) -> None:
            async with gate:
                tab = Tab(self, user)
                await ws_connect(lambda: tab, url, websocket_handshake_timeout=60)
                self.tabs.append(tab)
                await asyncio.wait_for(tab.welcomed, 60)

        await asyncio.gather(*(one(u) for u in self.users for _ in range(tabs)))
        return time.monotonic() - started

    async def open_redis(self, redis_url: str) -> None:
        rest = redis_url.split("://", 1)[1]
        hostport = rest.split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        reader, self._redis = await asyncio.open_connection(host, int(port))
        asyncio.get_running_loop().create_task(self._drain_replies(reader))

    async def _drain_replies(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(1 << 16):
            pass

    def publish(self, count: int) -> None:
        assert self._redis is not None
        now = time.time()
        out = []
        users = self.users
        for _ in range(count):
            user = users[self._next]
            self._next = (self._next + 1) % len(users)
            seq = self.seqs[user] = self.seqs[user] + 1
            channel = b"user:" + user.encode()
            message = envelope.notification(seq, int(now * 1000), _frame(user, seq, now))
            out.append(_resp(channel, message))
        self._redis.write(b"".join(out))
        self.published += count

    async def acks(self) -> None:
        while True:
            await asyncio.sleep(ACK_INTERVAL)
            for tab in self.tabs:
                tab.ack()

    async def saturate(self, seconds: float, window: int, tabs: int) -> float:
        """Delivered frames/s with at most `window` frames in flight."""
        return await self._drive(seconds, lambda: window - self._in_flight(tabs))

    async def offer(self, seconds: float, rate: float) -> float:
        start, base = time.monotonic(), self.published
        return await self._drive(
            seconds, lambda: int((time.monotonic() - start) * rate) - (self.published - base)
        )

    async def settle(self, tabs: int) -> None:
        """Wait (at most 10 s) until every published frame has arrived."""
        for _ in range(1000):
            if self._in_flight(tabs) <= 0:
                return
            await asyncio.sleep(0.01)

    def _in_flight(self, tabs: int) -> int:
        return self.published - self.received // tabs

    async def _drive(self, seconds: float, room: Any) -> float:
        end = time.monotonic() + seconds
        first = self.received
        while time.monotonic() < end:
            n = room()
            if n > 0:
                self.publish(min(n, 1000))
            await asyncio.sleep(0.001)
        return (self.received - first) / seconds


def _resp(channel: bytes, payload: bytes) -> bytes:
    return b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(channel),
        channel,
        len(payload),
        payload,
    )


def _frame(user: str, seq: int, now: float) -> bytes:
    """A ~230-byte frame shaped as the dispatcher's (shared/frames.py)."""
    notification = {
        "id": f"{user}-{seq}",
        "seq": seq,
        "type": "message:received",
        "title": "New message",
        "body": "Alice: are we still on for tomorrow?",
        "actionUrl": "/inbox",
        "data": {"t": now},
        "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now)),
        "expiresAt": None,
        "seenAt": None,
        "readAt": None,
        "archivedAt": None,
    }
    return orjson.dumps({"type": "notification:new", "seq": seq, "notification": notification})


def start_gateway(
    port: int, log: Path, env_extra: dict[str, str], cwd: str | None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TOCSIN_GATEWAY_PORT": str(port),
        "TOCSIN_JWT_SECRET": SECRET,
        "TOCSIN_NODE_ID": f"perf-{port}",
        "TOCSIN_WS_SEND_QUEUE": "100000",
        "TOCSIN_LOG_LEVEL": "warning",
        **env_extra,
    }
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "tocsin", "gateway"]
    out = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gateway did not become ready; see {log}")


def _spy(pid: int, seconds: float, out: str) -> subprocess.Popen[bytes]:
    """py-spy record (raw collapsed stacks) of the gateway for one window."""
    py_spy = str(Path(sys.executable).parent / "py-spy")
    cmd = [py_spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"]
    return subprocess.Popen(
        [*cmd, "-f", "raw", "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def measure(args: argparse.Namespace, port: int, gateway_pid: int) -> dict[str, Any]:
    users = [f"perf-{uuid.uuid4().hex[:10]}" for _ in range(args.users)]
    load = Load(users)
    await load.open_redis(os.environ["REDIS_URL"])
    connect_s = await load.connect(f"ws://127.0.0.1:{port}/v1/ws", args.tabs, args.burst)
    acker = asyncio.create_task(load.acks())
    await load.saturate(2, args.window, args.tabs)  # warm-up
    runs = []
    for run in range(args.runs):
        spy = _spy(gateway_pid, args.seconds, args.spy) if args.spy and run == 0 else None
        cpu, first = _cpu_seconds(gateway_pid), load.received
        sat = await load.saturate(args.seconds, args.window, args.tabs)
        cpu_us = (_cpu_seconds(gateway_pid) - cpu) * 1e6 / max(1, load.received - first)
        if spy is not None:
            spy.wait(30)
        # CPU per frame is steadier than frames/s on a shared machine: 1e6 / it is the
        # saturation the gateway would reach with its core to itself.
        result: dict[str, Any] = {
            "run": run,
            "saturation": round(sat),
            "cpu_us_per_frame": round(cpu_us, 1),
            "core_to_itself": round(1e6 / cpu_us),
        }
        if args.rate:
            await load.settle(args.tabs)
            load.latencies.clear()
            load.sampling = True
            delivered = await load.offer(args.seconds, args.rate)
            load.sampling = False
            result |= {
                "offered": args.rate,
                "delivered": round(delivered),
                "p50_ms": round(_pct(load.latencies, 0.5), 2),
                "p99_ms": round(_pct(load.latencies, 0.99), 2),
            }
        print(json.dumps(result), flush=True)
        runs.append(result)
        await load.settle(args.tabs)
    acker.cancel()
    for tab in load.tabs:
        if tab.transport is not None:
            tab.transport.send_close()
            tab.transport.disconnect()
    await asyncio.sleep(2)
    summary = {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "run"}
    return {
        "median": summary,
        "connect_s": round(connect_s, 2),
        "tabs": len(load.tabs),
        "out_of_order": load.out_of_order,
        "closes": load.closes,
        "errors": load.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--tabs", type=int, default=1)
    parser.add_argument("--burst", type=int, default=500, help="tabs connecting at once")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--window", type=int, default=4000, help="frames in flight at most")
    parser.add_argument("--rate", type=float, default=0, help="fixed offered rate (frames/s)")
    parser.add_argument("--spy", help="py-spy raw profile of the first saturation window")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    parser.add_argument("--log", default="/tmp/perf-gateway.log")
    parser.add_argument("--cwd", help="run the gateway from this tree (e.g. an older commit's)")
    args = parser.parse_args()
    port = free_port()
    extra = dict(item.split("=", 1) for item in args.env)
    gateway = start_gateway(port, Path(args.log), extra, args.cwd)
    os.sched_setaffinity(0, {1})
    try:
        report = uvloop.run(measure(args, port, gateway.pid))
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(40)
        except subprocess.TimeoutExpired:
            gateway.kill()
    text = Path(args.log).read_text(errors="replace")
    report["gateway_log"] = {
        "lines": text.count("\n"),
        "MaxConnectionsError": text.count("MaxConnectionsError"),
        "presence": text.count("presence:"),
        "warnings": text.count('"level":"warning"'),
        "errors": text.count('"level":"error"'),
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
