"""A gateway.wire.DirectSocket without a network, for Connection and Hub unit tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from shared import frames


class FakeSocket:
    """gateway.wire.DirectSocket over a list: frames decoded back to JSON as written. While
    `reading` is False, written bytes stay buffered and the transport pauses above high water."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.reading = True
        self.pending = 0
        self.high = 1 << 30
        self.closed: tuple[int, str] | None = None

    def write(self, frame: bytes) -> bool:
        if self.closed is not None:
            return False
        size = frame[1] & 0x7F
        start = 2 if size < 126 else 4 if size == 126 else 10
        self.sent.append(json.loads(frame[start:]))
        if not self.reading:
            self.pending += len(frame)
            if self.pending > self.high:
                self.writable.clear()
        return True

    def buffered(self) -> int:
        return self.pending

    def set_high_water(self, high: int) -> None:
        self.high = high

    def close_now(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)

    def detach(self, receiver: object) -> None:
        self.receiver = receiver

    def read_again(self) -> None:
        self.reading, self.pending = True, 0
        self.writable.set()

    def seqs(self) -> list[int]:
        out: list[int] = []
        for frame in self.sent:
            if frame["type"] == frames.NEW:
                out.append(frame["seq"])
            elif frame["type"] == frames.BATCH:
                out.extend(n["seq"] for n in frame["notifications"])
        return out
