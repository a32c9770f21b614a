"""A browser-tab stand-in for tests: hello with lastSeq, acks, reconnects across gateway
nodes, and keeps a ledger of every notification it received (duplicates counted)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import websockets
from websockets.exceptions import InvalidStatus, WebSocketException


class Tab:
    def __init__(
        self,
        urls: list[str],
        token: str,
        *,
        last_seq: int | None = None,
        origin: str | None = None,
        reconnect: bool = True,
        ack: bool = True,
    ) -> None:
        self.urls = urls
        self.token = token
        self.origin = origin
        self.reconnect = reconnect
        self.ack = ack
        self.cursor = last_seq  # None: brand-new client
        self.notifications: dict[int, dict[str, Any]] = {}
        self.arrivals: list[int] = []  # seqs in arrival order, duplicates included
        self.events: list[dict[str, Any]] = []  # every other frame
        self.welcomes: list[dict[str, Any]] = []
        self.connections = 0
        self.close_codes: list[int | None] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._ws: Any = None
        self._ack_task: asyncio.Task[None] | None = None
        self.acked = 0  # highest seq this tab has acknowledged

    @property
    def duplicates(self) -> int:
        return len(self.arrivals) - len(self.notifications)

    @property
    def contiguous(self) -> int:
        seq = self.cursor or 0
        while seq + 1 in self.notifications:
            seq += 1
        return seq

    async def start(self) -> Tab:
        self._task = asyncio.create_task(self._run())
        await self.wait(lambda: bool(self.welcomes), within=10)
        await self.wait(lambda: any(e.get("more") is False for e in self.events), within=10)
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def send(self, frame: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(frame))

    async def wait(self, predicate: Callable[[], bool], within: float = 10) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_seq(self, seq: int, within: float = 10) -> None:
        await self.wait(lambda: self.contiguous >= seq, within)

    async def _run(self) -> None:
        attempt = 0
        while True:
            url = self.urls[attempt % len(self.urls)]
            attempt += 1
            with contextlib.suppress(OSError, WebSocketException, InvalidStatus, TimeoutError):
                await self._session(url)
            if not self.reconnect:
                return
            await asyncio.sleep(0.05)

    async def _session(self, url: str) -> None:
        async with websockets.connect(
            url,
            subprotocols=["tocsin.v1"],
            origin=self.origin,
            open_timeout=5,  # type: ignore[arg-type]
        ) as ws:
            self._ws = ws
            self.connections += 1
            resume = self.contiguous if self.connections > 1 or self.cursor is not None else None
            await ws.send(
                json.dumps({"type": "hello", "v": 1, "token": self.token, "lastSeq": resume})
            )
            try:
                async for raw in ws:
                    await self._handle(json.loads(raw))
            finally:
                self.close_codes.append(ws.close_code)
                await self._notify()

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "notification:new":
            self._add(frame["notification"])
        elif kind == "notifications:batch":
            for notification in frame["notifications"]:
                self._add(notification)
            self.events.append(frame)
        elif kind == "welcome":
            self.welcomes.append(frame)
        else:
            self.events.append(frame)
        if self.ack and kind in ("notification:new", "notifications:batch"):
            self._schedule_ack()
        await self._notify()

    def _schedule_ack(self) -> None:
        """Coalesce acks like a real client: one per 50 ms burst, not one per frame."""
        if self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.create_task(self._ack_later(self._ws))

    async def _ack_later(self, ws: Any) -> None:
        await asyncio.sleep(0.05)
        seq = self.contiguous
        with contextlib.suppress(WebSocketException):
            await ws.send(json.dumps({"type": "ack", "seq": seq}))
            self.acked = seq
            await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _add(self, notification: dict[str, Any]) -> None:
        seq = int(notification["seq"])
        self.arrivals.append(seq)
        self.notifications.setdefault(seq, notification)
