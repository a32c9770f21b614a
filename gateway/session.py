"""The `/v1/ws` protocol (docs/protocol.md): hello, resume, live delivery, client frames."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from gateway.connection import Connection
from gateway.metrics import ACKS, CLOSES
from gateway.ratelimit import TokenBucket
from gateway.runtime import Gateway
from gateway.wire import DirectSocket, HandshakeSocket
from shared import frames, logs, serialization
from shared.auth import AuthError, TokenExpired, UserClaims, verify_user_token
from shared.http import UNAVAILABLE_ERRORS, WS_TRY_AGAIN_LATER, unavailable_reason
from shared.repository import STORE_ERRORS

logger = logging.getLogger("tocsin.gateway.session")

SUBPROTOCOL = "tocsin.v1"
MAX_SEQ = 2**63 - 1  # PostgreSQL bigint


class FrameError(Exception):
    """A client frame is malformed; answered with an `error` frame, the socket stays."""


def admitted(gateway: Gateway, origin: str | None) -> bool:
    """Whether an upgrade to /v1/ws may go ahead; if not it is refused with HTTP 403."""
    if gateway.draining or not gateway.settings.origin_allowed(origin):
        if not gateway.draining:
            logger.warning(
                "WebSocket refused (403): Origin %r is not in TOCSIN_ALLOWED_ORIGINS (%s)",
                str(origin)[:200],
                ",".join(gateway.settings.allowed_origins),
            )
        CLOSES.labels("403").inc()
        return False
    return True


async def serve_socket(gateway: Gateway, socket: HandshakeSocket) -> None:
    """One accepted /v1/ws connection (gateway/server.py upgrades it without ASGI)."""
    try:
        await Session(gateway, socket).run()
    except UNAVAILABLE_ERRORS as exc:
        _close(socket, WS_TRY_AGAIN_LATER, unavailable_reason(exc))
    except Exception:
        # Past the handshake a failure is a close frame the client can act on, never a
        # dropped connection (1006).
        logger.exception("socket failed after accept")
        _close(socket, 1011, "internal error")


def _close(socket: DirectSocket, code: int, reason: str) -> None:
    """A close before the session detached (after it, Connection.close)."""
    CLOSES.labels(str(code)).inc()
    socket.close_now(code, reason[:120])


UNSUPPORTED = "unsupported data: frames are JSON objects with a type"
_CLEANUPS: set[asyncio.Task[None]] = set()


def _parse(text: str | None) -> dict[str, Any] | None:
    """A client frame: a JSON object with a string type, else None."""
    try:
        frame = serialization.loads(text) if text is not None else None
    except serialization.SerializationError:
        return None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return None
    return frame


def _json(frame: dict[str, Any]) -> bytes:
    return serialization.dumps(frame)


def _int_field(frame: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = frame.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQ:
        raise FrameError(f"{frame.get('type')}.{name} must be an integer from 0 to {MAX_SEQ}")
    return value


class _Close(NamedTuple):
    code: int
    reason: str


class Session:
    """One socket's protocol. The handshake (hello, welcome) runs in the socket's ASGI task;
    then the session detaches (gateway.wire.FrameReceiver): client frames are handled as
    they arrive, frames that need the store run in a task that exists only while they do,
    and an idle socket holds no task at all."""

    def __init__(self, gateway: Gateway, socket: HandshakeSocket) -> None:
        self.gateway = gateway
        self.settings = gateway.settings
        self.socket = socket
        self.bucket = TokenBucket(self.settings.rate_per_second, self.settings.rate_burst)
        self.expiry: asyncio.TimerHandle | None = None
        self.conn: Connection | None = None
        self.context: contextvars.Context | None = None
        self.pending: deque[dict[str, Any] | _Close] | None = None  # behind a running handler
        self.refused = False  # a close was decided: later frames are not read
        self.gone = False  # the socket is closed: only state changes are still carried out
        self.worker: asyncio.Task[None] | None = None

    async def run(self) -> None:
        hello = await self._hello()
        if hello is None:
            return
        claims, last_seq = hello
        if self.gateway.hub.sockets_of(claims.user_id) >= self.settings.max_sockets_per_user:
            # No await until hub.add below: the count cannot change in between.
            self._close(4013, "too many sockets for this user on this node")
            return
        connection_id = self.gateway.next_connection_id()
        logs.CONNECTION_ID.set(connection_id)  # this socket's task and what it starts
        socket = self.socket
        conn = self.conn = Connection(
            socket,
            claims.user_id,
            connection_id,
            functools.partial(self.gateway.store.backlog, claims.user_id),
            held_limit=self.settings.send_queue,
            buffer_bytes=self.settings.send_buffer_bytes,
            page_size=self.settings.backlog_page,
            stall_timeout=self.settings.close_deadline,
        )
        try:
            await self.gateway.hub.add(conn)
            await self._welcome(conn, claims, last_seq)
        except BaseException:
            await self._cleanup(conn)
            raise
        self.context = contextvars.copy_context()
        socket.detach(self)

    # -- detached: gateway.wire.FrameReceiver ---------------------------------------------

    def on_frame(self, text: str | None) -> None:
        assert self.context is not None
        self.context.run(self._on_frame, text)

    def on_disconnect(self) -> None:
        """Called once by the protocol (gateway.wire.FrameReceiver). A read or seen command
        that came with the close (a tab marking read as it navigates away) is still carried
        out: the worker finishes those before the cleanup."""
        assert self.conn is not None and self.context is not None
        self.gone = True
        task = asyncio.get_running_loop().create_task(
            self._cleanup(self.conn, self.worker), context=self.context
        )
        _CLEANUPS.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(_CLEANUPS.discard)

    async def _cleanup(self, conn: Connection, worker: asyncio.Task[None] | None = None) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        if worker is not None:
            await asyncio.wait([worker])
        await self.gateway.hub.remove(conn)
        await conn.stop()

    def _on_frame(self, text: str | None) -> None:
        conn = self.conn
        assert conn is not None
        if conn.closing or self.refused:
            return
        if not self.bucket.take():
            self._close_in_order(conn, 4008, "rate limited")
            return
        frame = _parse(text)
        if frame is None:
            self._close_in_order(conn, 1003, UNSUPPORTED)
            return
        if self.pending is not None:  # a handler is reading the store: keep the order
            self.pending.append(frame)
            return
        handler = SYNC_HANDLERS.get(frame["type"])
        if handler is not None:
            self._guarded(conn, frame, handler)
            return
        self.pending = deque([frame])
        self.worker = asyncio.get_running_loop().create_task(self._work(conn))

    def _close_in_order(self, conn: Connection, code: int, reason: str) -> None:
        """Frames that came before are still answered; nothing after is read."""
        self.refused = True
        if self.pending is None:
            conn.close(code, reason)
        else:
            self.pending.append(_Close(code, reason))

    async def _work(self, conn: Connection) -> None:
        """Frames in arrival order while one of them waits for the store."""
        try:
            while self.pending:
                frame = self.pending.popleft()
                if isinstance(frame, _Close):
                    conn.close(frame.code, frame.reason)
                    return
                if (self.gone or conn.closing) and frame["type"] not in STATE_CHANGES:
                    continue  # its answer has no socket to go to
                sync = SYNC_HANDLERS.get(frame["type"])
                if sync is not None:
                    self._guarded(conn, frame, sync)
                    continue
                handler = ASYNC_HANDLERS.get(frame["type"])
                try:
                    if handler is None:
                        raise FrameError(f"unknown frame type {frame['type']!r}")
                    await handler(self, conn, frame)
                except FrameError as exc:
                    code = "unknown_type" if handler is None else "bad_frame"
                    self._error(conn, frame, code, str(exc))
                except UNAVAILABLE_ERRORS as exc:
                    conn.close(WS_TRY_AGAIN_LATER, unavailable_reason(exc))
                except Exception:
                    logger.exception("handling a %r frame failed", frame["type"])
                    conn.close(1011, "internal error")
        finally:
            self.pending = None
            self.worker = None

    def _guarded(self, conn: Connection, frame: dict[str, Any], handler: SyncHandler) -> None:
        try:
            handler(self, conn, frame)
        except FrameError as exc:
            self._error(conn, frame, "bad_frame", str(exc))
        except Exception:
            logger.exception("handling a %r frame failed", frame["type"])
            conn.close(1011, "internal error")

    # -- handshake ----------------------------------------------------------------------

    def _close(self, code: int, reason: str) -> None:
        _close(self.socket, code, reason)

    async def _hello(self) -> tuple[UserClaims, int | None] | None:
        try:
            message = await asyncio.wait_for(self.socket.receive(), self.settings.hello_timeout)
        except TimeoutError:
            self._close(4004, "hello timeout")
            return None
        frame = self._parse(message)
        if frame is None:
            return None
        if frame.get("type") != "hello" or frame.get("v") != frames.PROTOCOL_VERSION:
            self._close(1008, "policy violation: first frame must be hello with v=1")
            return None
        claims = self._verify(frame.get("token"))
        if claims is None:
            return None
        try:
            return claims, _int_field(frame, "lastSeq", required=False)
        except FrameError as exc:
            self._close(1008, f"policy violation: {exc}")
            return None

    def _verify(self, token: object) -> UserClaims | None:
        if not isinstance(token, str) or not token:
            self._close(4001, "unauthorized: missing token")
            return None
        try:
            claims = verify_user_token(token, self.settings.jwt)
        except TokenExpired:
            self._close(4003, "token expired")
            return None
        except AuthError as exc:
            self._close(4001, f"unauthorized: {exc.reason}")
            return None
        return claims

    def _parse(self, message: Mapping[str, Any]) -> dict[str, Any] | None:
        """The frame as a dict, or None once the socket is closed (disconnect or bad data)."""
        if message["type"] == "websocket.disconnect":
            return None
        frame = _parse(message.get("text"))
        if frame is None:
            self._close(1003, UNSUPPORTED)
        return frame

    async def _welcome(self, conn: Connection, claims: UserClaims, last_seq: int | None) -> None:
        cursor, latest, counts = await self.gateway.store.welcome_state(conn.user_id)
        if last_seq is not None:
            cursor = min(last_seq, latest)
        conn.last_seq = cursor
        self._arm_expiry(conn, claims)
        welcome = {
            "type": "welcome",
            "v": frames.PROTOCOL_VERSION,
            "userId": conn.user_id,
            "node": self.settings.node_id,
            "connectionId": conn.id,
            "lastSeq": latest,
            **counts.to_wire(),
            "heartbeatMs": int(self.settings.ping_interval * 1000),
            "tokenExpiresAt": int(claims.expires_at),
        }
        conn.send_json(_json(welcome))
        conn.request_sync(initial=True)

    def _arm_expiry(self, conn: Connection, claims: UserClaims) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        delay = max(0.0, claims.expires_at + self.settings.jwt.leeway_seconds - time.time())
        self.expiry = asyncio.get_running_loop().call_later(
            delay, functools.partial(conn.close, 4003, "token expired")
        )

    # -- serving ------------------------------------------------------------------------

    def _error(self, conn: Connection, frame: dict[str, Any], code: str, message: str) -> None:
        error: dict[str, Any] = {"type": "error", "code": code, "message": message}
        ref = frame.get("ref")
        if isinstance(ref, str) and len(ref) <= 64:
            error["ref"] = ref
        conn.send_json(_json(error))

    # -- client frames ------------------------------------------------------------------

    def _ack(self, conn: Connection, frame: dict[str, Any]) -> None:
        seq = _int_field(frame, "seq", required=True)
        assert seq is not None
        ACKS.inc()
        # A client can only acknowledge what this socket was actually sent.
        self.gateway.acks.ack(conn.user_id, min(seq, conn.last_seq))

    async def _read(self, conn: Connection, frame: dict[str, Any]) -> None:
        ident = frame.get("id")
        if not isinstance(ident, str):
            raise FrameError("read.id must be a notification id string")
        if await self.gateway.read_state.change_one("read", conn.user_id, ident) is None:
            self._error(conn, frame, "not_found", "no such notification")

    async def _read_all(self, conn: Connection, frame: dict[str, Any]) -> None:
        up_to = _int_field(frame, "upToSeq", required=False)
        await self.gateway.read_state.read_all(conn.user_id, up_to)

    async def _seen_all(self, conn: Connection, frame: dict[str, Any]) -> None:
        up_to = _int_field(frame, "upToSeq", required=False)
        await self.gateway.read_state.seen_all(conn.user_id, up_to)

    async def _sync_count(self, conn: Connection, frame: dict[str, Any]) -> None:
        counts = await self.gateway.store.counts(conn.user_id)
        conn.send_json(frames.unread_count(counts))

    def _token(self, conn: Connection, frame: dict[str, Any]) -> None:
        token = frame.get("token")
        if not isinstance(token, str):
            raise FrameError("token.token must be a JWT string")
        try:
            claims = verify_user_token(token, self.settings.jwt)
        except AuthError as exc:
            raise FrameError(f"token refused: {exc.reason}") from None
        if claims.user_id != conn.user_id:
            raise FrameError("token refused: it names another user")
        self._arm_expiry(conn, claims)
        conn.send_json(_json({"type": "token-accepted", "tokenExpiresAt": int(claims.expires_at)}))

    async def _ping(self, conn: Connection, frame: dict[str, Any]) -> None:
        """pong carries the user's newest seq so a client can tell it is behind; a socket
        that was not sent up to it is synced from the store (a live frame was lost)."""
        t = frame.get("t")
        try:
            async with asyncio.timeout(1.0):  # a stalled store must not hold the pong
                latest: int | None = await self.gateway.store.latest_seq(conn.user_id)
        except STORE_ERRORS:
            latest = None  # the pong still proves the socket alive
        pong = {"type": "pong", "t": t if isinstance(t, int | float) else None}
        conn.send_json(_json({**pong, "latestSeq": latest}))
        if latest is not None and latest > conn.last_seq:
            conn.request_sync()


SyncHandler = Callable[[Session, Connection, dict[str, Any]], None]
AsyncHandler = Callable[[Session, Connection, dict[str, Any]], Awaitable[None]]
# Carried out even when the socket closed behind them: the user did ask for them.
STATE_CHANGES = frozenset({"read", "read-all", "seen-all"})
SYNC_HANDLERS: dict[str, SyncHandler] = {"ack": Session._ack, "token": Session._token}
ASYNC_HANDLERS: dict[str, AsyncHandler] = {
    "read": Session._read,
    "read-all": Session._read_all,
    "seen-all": Session._seen_all,
    "sync-count": Session._sync_count,
    "ping": Session._ping,
}
