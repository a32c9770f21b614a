"""Commands packed by hand into one buffer per batch, replies parsed by hiredis in C, many
callers' batches pipelined on one connection: the broker's publishes (publish_many) and the
gateway's presence writes (gateway/presence.py), commands answered by one plain reply each.

redis-py builds each command of a pipeline in Python and reads each reply through a coroutine,
about 13 µs a message; a 10,000-message fan-out cost 0.12-0.15 s through it and 14-18 ms here
(to a local Redis, no subscribers). Redis answers commands in the order they came, so each batch
waits for the next `count` replies after those of the batches written before it.

A batch that is not answered (its caller gave up: a timeout, a cancellation) leaves the
connection in an unknown state: the connection is dropped, every batch still waiting on it
fails, and the next batch opens a fresh one. What failed is for the caller to count and leave
to the outbox (a publish) or to the next heartbeat (presence), as with any Redis failure.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

import hiredis

from shared import keys
from shared.broker.base import BrokerUnavailable
from shared.broker.link import Endpoint, command

_PUBLISH = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"


def pack_publishes(messages: Sequence[tuple[str, bytes]]) -> bytes:
    """The PUBLISH command of each (user, message), in order, as one buffer of RESP."""
    channel = keys.user_channel
    parts = []
    for user_id, message in messages:
        name = channel(user_id).encode()
        parts.append(_PUBLISH % (len(name), name, len(message), message))
    return b"".join(parts)


@dataclass
class _Batch:
    expected: int  # replies still to come
    future: asyncio.Future[None]
    error: str | None = field(default=None)  # the first error reply among them


class PipelinedConnection(asyncio.Protocol):
    """One connection to Redis that only sends commands answered by one plain reply each."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        self._waiting: deque[_Batch] = deque()
        self.closed = False

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        waiting = self._waiting
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                if not waiting:
                    self._drop("a reply nobody asked for")
                    return
                batch = waiting[0]
                if batch.error is None and isinstance(reply, hiredis.ReplyError):
                    batch.error = str(reply)
                batch.expected -= 1
                if batch.expected == 0:
                    waiting.popleft()
                    _settle(batch)
        except hiredis.ProtocolError as exc:
            self._drop(f"unreadable reply from Redis: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reason = f"connection lost: {exc!r}" if exc is not None else "connection closed"
        self._fail(reason)

    # --- use ----------------------------------------------------------------------------

    async def login(self, commands: Sequence[bytes]) -> None:
        """AUTH / SELECT, pipelined; an error reply raises BrokerUnavailable."""
        if commands:
            await self.wait([self.send(b"".join(commands), len(commands))])

    def send(self, data: bytes, count: int) -> asyncio.Future[None]:
        """Write `data` (`count` commands); the future settles with their replies, failing
        with BrokerUnavailable when one is an error or the connection is lost."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closed or self._transport is None:
            future.set_exception(BrokerUnavailable("Redis commands failed: connection closed"))
            return future
        self._waiting.append(_Batch(count, future))
        self._transport.write(data)
        return future

    async def wait(self, futures: Sequence[asyncio.Future[None]]) -> None:
        """Each in turn. A caller that stops waiting drops the connection: the replies still
        owed to it would otherwise be read as the next batch's."""
        try:
            for future in futures:
                await asyncio.shield(future)
        except asyncio.CancelledError:
            if not all(future.done() for future in futures):
                self._drop("a batch was abandoned before Redis answered it")
            raise
        finally:
            for future in futures:
                future.add_done_callback(_retrieved)

    def close(self) -> None:
        self._drop("closed")

    def _drop(self, reason: str) -> None:
        self.closed = True
        self._fail(reason)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, reason: str) -> None:
        waiting, self._waiting = self._waiting, deque()
        for batch in waiting:
            if not batch.future.done():
                batch.future.set_exception(BrokerUnavailable(f"Redis commands failed: {reason}"))


def _retrieved(future: asyncio.Future[None]) -> None:
    """A failure after the caller stopped waiting is no "exception never retrieved"."""
    if not future.cancelled():
        future.exception()


def _settle(batch: _Batch) -> None:
    if batch.future.done():
        return
    if batch.error is None:
        batch.future.set_result(None)
    else:
        batch.future.set_exception(BrokerUnavailable(f"Redis refused a command: {batch.error}"))


class Pipelined:
    """The live PipelinedConnection to `endpoint`, opened on first use and again after a loss."""

    def __init__(self, endpoint: Endpoint, connect_timeout: float, name: str = "") -> None:
        self._endpoint = endpoint
        self._name = name  # CLIENT SETNAME, for CLIENT LIST
        self._connect_timeout = connect_timeout
        self._connection: PipelinedConnection | None = None
        self._lock = asyncio.Lock()

    async def publish_many(self, messages: Sequence[tuple[str, bytes]], chunk: int) -> None:
        """In order: every `chunk` messages go out as one write, all written before the first
        reply is awaited, so Redis works on one while the next is packed."""
        await self.execute(
            (pack_publishes(part), len(part))
            for start in range(0, len(messages), chunk)
            if (part := messages[start : start + chunk])
        )

    async def execute(self, batches: Iterable[tuple[bytes, int]]) -> None:
        """Each (packed commands, how many) written in order, then every reply awaited;
        BrokerUnavailable when one is an error reply or the connection is lost."""
        connection = await self._connected()
        await connection.wait([connection.send(data, count) for data, count in batches])

    async def _connected(self) -> PipelinedConnection:
        connection = self._connection
        if connection is not None and not connection.closed:
            return connection
        async with self._lock:
            connection = self._connection
            if connection is not None and not connection.closed:
                return connection
            connection = PipelinedConnection()
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await self._endpoint.open(connection)
                    login = self._endpoint.login()
                    if self._name:
                        login.append(command(b"CLIENT", b"SETNAME", self._name.encode()))
                    await connection.login(login)
            except (OSError, TimeoutError) as exc:
                connection.close()
                raise BrokerUnavailable(f"cannot connect to Redis: {exc!r}") from exc
            except BrokerUnavailable:
                connection.close()
                raise
            self._connection = connection
            return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
