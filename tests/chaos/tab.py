"""A simulated browser tab written from docs/protocol.md alone, light enough for hundreds.

It says `hello` with `lastSeq` (0 at first: a brand-new user's every notification), keeps what
it holds de-duplicated by id, acks its contiguous seq, reconnects to the next gateway with a
fresh token after any close, can refresh its token with the `token` frame, can stop reading
for a while (a slow consumer) and can drop its socket on purpose (a reconnect storm).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

RCVBUF = 16_384  # bytes, for slow tabs
ACK_DELAY = 0.1  # seconds: acks coalesced as a browser would, well under the rate limit
PROTOCOL = Subprotocol("tocsin.v1")
TokenSource = Callable[[str, int], str]  # (user, ttl seconds) -> JWT


@dataclass(frozen=True)
class Held:
    seq: int
    at: float  # time.monotonic() of the first arrival


class ChaosTab:
    def __init__(
        self,
        user: str,
        urls: list[str],
        tokens: TokenSource,
        *,
        ttl: int = 600,
        refresh_by_frame: bool = False,
        small_buffer: bool = False,
    ) -> None:
        self.user = user
        self.urls = urls
        self.tokens = tokens
        self.ttl = ttl
        self.refresh_by_frame = refresh_by_frame
        self.small_buffer = small_buffer  # a tiny receive buffer: stopping to read shows at once
        self.held: dict[str, Held] = {}  # notification id -> what arrived first
        self.seqs: dict[int, str] = {}  # seq -> first id held under it
        self.seq_conflicts = 0  # a second id under a seq already held (duplicate after de-dup)
        self.raw_arrivals = 0
        self.raw_duplicates = 0  # arrivals of an id already held
        self.out_of_order = 0  # first arrivals below the highest seq already held
        self.highest = 0
        self.contiguous = 0
        self.connections = 0
        self.welcomed = 0
        self.close_codes: list[int | None] = []
        self.errors: list[dict[str, Any]] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._ack_task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        for task in (self._task, self._ack_task, self._refresh_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketException, OSError):
                    await task

    def drop(self) -> None:
        """Abort the socket without a close frame, as a tab whose network blinks."""
        if self._ws is not None:
            self._ws.transport.abort()

    def holds_all(self, ids: list[str]) -> bool:
        return all(i in self.held for i in ids)

    async def _run(self) -> None:
        attempt = 0  # the first url is this tab's home node
        while True:
            url = self.urls[attempt % len(self.urls)]
            with contextlib.suppress(OSError, WebSocketException, InvalidStatus, TimeoutError):
                await self._session(url)
            attempt += 1
            await asyncio.sleep(random.uniform(0.05, 0.3))

    async def _session(self, url: str) -> None:
        sock = await self._socket(url) if self.small_buffer else None
        async with websockets.connect(
            url, subprotocols=[PROTOCOL], open_timeout=5, max_queue=4, close_timeout=2, sock=sock
        ) as ws:
            self._ws = ws
            self.connections += 1
            hello = {"type": "hello", "v": 1, "token": self._token(), "lastSeq": self.contiguous}
            await ws.send(json.dumps(hello))
            try:
                while True:
                    await self.reading.wait()
                    self._handle(json.loads(await ws.recv()))
            finally:
                self.close_codes.append(ws.close_code)
                self._ws = None

    async def _socket(self, url: str) -> socket.socket:
        """A connected socket whose receive buffer the kernel cannot grow past RCVBUF."""
        parts = urlsplit(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(5):
                await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _token(self) -> str:
        if self.refresh_by_frame:
            if self._refresh_task is not None:
                self._refresh_task.cancel()
            self._refresh_task = asyncio.create_task(self._refresh_forever())
        return self.tokens(self.user, self.ttl)

    async def _refresh_forever(self) -> None:
        """Send a fresh token a third of the lifetime before the current one expires."""
        while True:
            await asyncio.sleep(self.ttl * 2 / 3)
            ws = self._ws
            if ws is not None:
                with contextlib.suppress(WebSocketException):
                    fresh = self.tokens(self.user, self.ttl)
                    await ws.send(json.dumps({"type": "token", "token": fresh}))

    def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "notification:new":
            self._add(frame["notification"])
        elif kind == "notifications:batch":
            for notification in frame["notifications"]:
                self._add(notification)
        elif kind == "welcome":
            self.welcomed += 1
            return
        elif kind == "error":
            self.errors.append(frame)
            return
        else:
            return
        if self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.create_task(self._ack_later())

    async def _ack_later(self) -> None:
        await asyncio.sleep(ACK_DELAY)
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(WebSocketException):
                await ws.send(json.dumps({"type": "ack", "seq": self.contiguous}))

    def _add(self, notification: dict[str, Any]) -> None:
        ident, seq = str(notification["id"]), int(notification["seq"])
        self.raw_arrivals += 1
        if ident in self.held:
            self.raw_duplicates += 1
            return
        self.held[ident] = Held(seq, time.monotonic())
        if seq in self.seqs:
            self.seq_conflicts += 1
        else:
            self.seqs[seq] = ident
        if seq < self.highest:
            self.out_of_order += 1
        self.highest = max(self.highest, seq)
        while self.contiguous + 1 in self.seqs:
            self.contiguous += 1
