"""The subscriber's own connection to Redis: an asyncio.Protocol feeding hiredis, RESP2.

redis-py's PubSub.get_message() hands out one message per call, one loop wake-up each; here
every complete reply of one read is parsed (in C) and dispatched before returning to the loop,
so a busy link costs one wake-up per socket read, not per message (tests/perf/pubsub_read.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import hiredis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.connection import parse_url as redis_parse_url

from shared import keys

logger = logging.getLogger("tocsin.broker")

MESSAGE = b"message"
SUBSCRIBE = b"subscribe"
UNSUBSCRIBE = b"unsubscribe"


def command(*args: bytes) -> bytes:
    """One RESP command (an array of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


@dataclass(frozen=True)
class Endpoint:
    """Where the link connects and how it logs in, read from the URL by redis-py itself."""

    host: str
    port: int
    path: str | None  # unix:// socket
    db: int
    username: str | None
    password: str | None
    ssl: ssl.SSLContext | None  # rediss://

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        params: dict[str, Any] = dict(redis_parse_url(url))
        kind = params.pop("connection_class", Connection)
        return cls._of(kind(**params))

    @classmethod
    def from_pool(cls, pool: ConnectionPool) -> Endpoint:
        """Where `pool`'s connections go (a redis-py client handed to the broker)."""
        return cls._of(pool.connection_class(**pool.connection_kwargs))

    @classmethod
    def _of(cls, conn: AbstractConnection) -> Endpoint:
        """`conn` is never connected: it only applies redis-py's defaults."""
        return cls(
            host=getattr(conn, "host", "localhost"),
            port=int(getattr(conn, "port", 6379)),
            path=conn.path if isinstance(conn, UnixDomainSocketConnection) else None,
            db=int(conn.db),
            username=conn.username,
            password=conn.password,
            ssl=conn.ssl_context.get() if isinstance(conn, SSLConnection) else None,
        )

    def login(self) -> list[bytes]:
        """The commands a fresh connection must send before it subscribes."""
        commands = []
        if self.password is not None:
            credentials = (self.username, self.password) if self.username else (self.password,)
            commands.append(command(b"AUTH", *(c.encode() for c in credentials)))
        if self.db:
            commands.append(command(b"SELECT", b"%d" % self.db))  # pub/sub ignores it; tidy
        return commands

    async def open(self, link: asyncio.Protocol) -> None:
        loop = asyncio.get_running_loop()
        if self.path is not None:
            await loop.create_unix_connection(lambda: link, self.path)
            return
        transport, _ = await loop.create_connection(
            lambda: link,
            self.host,
            self.port,
            ssl=self.ssl,
            server_hostname=self.host if self.ssl is not None else None,
        )
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


class Listener(Protocol):
    """The broker, as its link sees it."""

    def heard(self) -> None: ...
    def confirmed(self, kind: bytes, channel: bytes) -> None: ...
    def lost(self, link: Link, reason: str) -> None: ...


class Link(asyncio.Protocol):
    """One subscriber connection. Messages go straight to `deliver(user_id, data)`, in the
    order Redis sent them; confirmations and loss go to the listener."""

    def __init__(
        self, listener: Listener, deliver: Callable[[str, bytes], None], control: bytes
    ) -> None:
        self._listener = listener
        self._deliver = deliver
        self._control = control
        self._reader = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        # The login's plain replies (before any SUBSCRIBE): how many, those so far, all of them.
        self._login: tuple[int, list[object], asyncio.Future[list[object]]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._listener.heard()
        reader = self._reader
        deliver = self._deliver
        control = self._control
        user_of = keys.user_from_channel
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                if type(reply) is list and reply[0] == MESSAGE:
                    channel = reply[1]
                    if channel != control:
                        try:
                            deliver(user_of(channel.decode()), reply[2])
                        except Exception:
                            logger.exception("delivering a message on %r failed", channel)
                else:
                    self._other(reply)
        except hiredis.ProtocolError as exc:
            logger.error("unreadable reply from Redis (%s); dropping the link", exc)
            self.close()

    def _other(self, reply: object) -> None:
        if type(reply) is list:
            if reply[0] in (SUBSCRIBE, UNSUBSCRIBE):
                self._listener.confirmed(reply[0], reply[1])
            return  # pong, or a pattern message we never asked for
        if self._login is not None:
            expected, replies, future = self._login
            replies.append(reply)
            if len(replies) == expected:
                self._login = None
                if not future.done():
                    future.set_result(replies)
        elif isinstance(reply, hiredis.ReplyError):
            # Refused subscribes come back as plain errors (an ACL without the channel).
            self._listener.lost(self, f"Redis refused a command: {reply}")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reason = f"connection lost: {exc!r}" if exc is not None else "connection closed by Redis"
        if self._login is not None and not self._login[2].done():
            self._login[2].set_exception(ConnectionError(reason))
        self._listener.lost(self, reason)

    async def login(self, required: list[bytes], optional: list[bytes]) -> None:
        """Send the login commands pipelined. An error reply to a required one raises
        ConnectionError; to an optional one (the connection's name) it is only logged."""
        commands = [*required, *optional]
        if not commands:
            return
        future: asyncio.Future[list[object]] = asyncio.get_running_loop().create_future()
        self._login = (len(commands), [], future)
        self.send(b"".join(commands))
        for index, reply in enumerate(await future):
            if not isinstance(reply, hiredis.ReplyError):
                continue
            if index < len(required):
                raise ConnectionError(f"Redis refused the pub/sub login: {reply}")
            logger.info("Redis refused an optional pub/sub login command: %s", reply)

    def send(self, data: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(data)

    def close(self) -> None:
        """Drop the connection at once (what is unsent is of no use to a dead link)."""
        if self._transport is not None:
            self._transport.abort()
