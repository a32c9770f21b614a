"""A TCP proxy on loopback whose link the test controls: pass, stall, blackhole or cut.

Put it between a Tocsin process and Redis (or PostgreSQL) to make the faults a network makes:
- `stall()`: bytes stop flowing both ways, connections stay open (a frozen link);
- `blackhole()`: what the client sends is read and dropped, nothing comes back, and new
  connections are accepted but go nowhere (a silent firewall);
- `cut()`: every open connection is closed (a reset);
- `heal()`: back to passing bytes (stalled bytes are then delivered, blackholed ones are lost).
It runs its own event loop in a thread, so sync and async tests use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PASS, STALL, BLACKHOLE = "pass", "stall", "blackhole"
_CHUNK = 65_536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = PASS
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def url_host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stall(self) -> None:
        self._set(STALL)

    def blackhole(self) -> None:
        self._set(BLACKHOLE)

    def heal(self) -> None:
        self._set(PASS)

    def cut(self) -> None:
        self._call(self._cut())

    def _set(self, mode: str) -> None:
        async def change() -> None:
            self.mode = mode
            if mode == STALL:
                self._flowing.clear()
            else:
                self._flowing.set()

        self._call(change())

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut()

    async def _cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.mode == BLACKHOLE:
            await self._drain_forever(reader)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _drain_forever(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while await reader.read(_CHUNK):
                pass

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(_CHUNK):
                await self._flowing.wait()
                if self.mode == BLACKHOLE:
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)


@contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
