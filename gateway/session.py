"""The `/v1/ws` protocol (docs/protocol.md): hello, resume, live delivery, client frames."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.connection import Connection
from gateway.metrics import ACKS, CLOSES
from gateway.ratelimit import TokenBucket
from gateway.runtime import Gateway
from gateway.wire import DIRECT_SOCKET
from shared import frames, logs, serialization
from shared.auth import AuthError, TokenExpired, UserClaims, verify_user_token
from shared.http import UNAVAILABLE_ERRORS
from shared.repository import STORE_ERRORS

logger = logging.getLogger("tocsin.gateway.session")

SUBPROTOCOL = "tocsin.v1"
MAX_SEQ = 2**63 - 1  # PostgreSQL bigint


class FrameError(Exception):
    """A client frame is malformed; answered with an `error` frame, the socket stays."""


async def websocket_endpoint(websocket: WebSocket) -> None:
    gateway: Gateway = websocket.app.state.gateway
    origin = websocket.headers.get("origin")
    if gateway.draining or not gateway.settings.origin_allowed(origin):
        if not gateway.draining:
            logger.warning(
                "WebSocket refused (403): Origin %r is not in TOCSIN_ALLOWED_ORIGINS (%s)",
                str(origin)[:200],
                ",".join(gateway.settings.allowed_origins),
            )
        CLOSES.labels("403").inc()
        await websocket.close(1008)  # before accept: the handshake is refused with HTTP 403
        return
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        await Session(gateway, websocket).run()
    except UNAVAILABLE_ERRORS:
        raise  # the edge closes the socket with 1013 (shared/http.py)
    except Exception:
        # Past the handshake a failure is a close frame the client can act on, never a
        # dropped connection (1006).
        logger.exception("socket failed after accept")
        CLOSES.labels("1011").inc()
        with contextlib.suppress(Exception):
            await websocket.close(1011, "internal error")


def _json(frame: dict[str, Any]) -> bytes:
    return serialization.dumps(frame)


def _int_field(frame: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = frame.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQ:
        raise FrameError(f"{frame.get('type')}.{name} must be an integer from 0 to {MAX_SEQ}")
    return value


class Session:
    def __init__(self, gateway: Gateway, websocket: WebSocket) -> None:
        self.gateway = gateway
        self.settings = gateway.settings
        self.websocket = websocket
        self.bucket = TokenBucket(self.settings.rate_per_second, self.settings.rate_burst)
        self.expiry: asyncio.TimerHandle | None = None
        self.handlers: dict[str, Callable[[Connection, dict[str, Any]], Awaitable[None]]] = {
            "ack": self._ack,
            "read": self._read,
            "read-all": self._read_all,
            "seen-all": self._seen_all,
            "sync-count": self._sync_count,
            "token": self._token,
            "ping": self._ping,
        }

    async def run(self) -> None:
        hello = await self._hello()
        if hello is None:
            return
        claims, last_seq = hello
        if self.gateway.hub.sockets_of(claims.user_id) >= self.settings.max_sockets_per_user:
            # No await until hub.add below: the count cannot change in between.
            await self._close(4013, "too many sockets for this user on this node")
            return
        connection_id = self.gateway.next_connection_id()
        logs.CONNECTION_ID.set(connection_id)  # this socket's task and the tasks it starts
        socket = self.websocket.scope["extensions"].get(DIRECT_SOCKET)
        if socket is None:
            logger.error("no direct socket: run the gateway with `tocsin gateway`")
            await self._close(1011, "internal error")
            return
        conn = Connection(
            socket,
            claims.user_id,
            connection_id,
            functools.partial(self.gateway.repo.backlog, claims.user_id),
            queue_size=self.settings.send_queue,
            buffer_bytes=self.settings.send_buffer_bytes,
            page_size=self.settings.backlog_page,
            stall_timeout=self.settings.close_deadline,
        )
        try:
            await self.gateway.hub.add(conn)
            await self._welcome(conn, claims, last_seq)
            await self._serve(conn)
        finally:
            if self.expiry is not None:
                self.expiry.cancel()
            await self.gateway.hub.remove(conn)
            await conn.stop()

    # -- handshake ----------------------------------------------------------------------

    async def _close(self, code: int, reason: str) -> None:
        CLOSES.labels(str(code)).inc()
        with contextlib.suppress(Exception):
            await self.websocket.close(code, reason[:120])

    async def _hello(self) -> tuple[UserClaims, int | None] | None:
        try:
            message = await asyncio.wait_for(self.websocket.receive(), self.settings.hello_timeout)
        except TimeoutError:
            await self._close(4004, "hello timeout")
            return None
        frame = await self._parse(message)
        if frame is None:
            return None
        if frame.get("type") != "hello" or frame.get("v") != frames.PROTOCOL_VERSION:
            await self._close(1008, "policy violation: first frame must be hello with v=1")
            return None
        claims = await self._verify(frame.get("token"))
        if claims is None:
            return None
        try:
            return claims, _int_field(frame, "lastSeq", required=False)
        except FrameError as exc:
            await self._close(1008, f"policy violation: {exc}")
            return None

    async def _verify(self, token: object) -> UserClaims | None:
        if not isinstance(token, str) or not token:
            await self._close(4001, "unauthorized: missing token")
            return None
        try:
            claims = verify_user_token(token, self.settings.jwt)
        except TokenExpired:
            await self._close(4003, "token expired")
            return None
        except AuthError as exc:
            await self._close(4001, f"unauthorized: {exc.reason}")
            return None
        return claims

    async def _parse(self, message: MutableMapping[str, Any]) -> dict[str, Any] | None:
        """The frame as a dict, or None once the socket is closed (disconnect or bad data)."""
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        try:
            frame = serialization.loads(text) if text is not None else None
        except serialization.SerializationError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._close(1003, "unsupported data: frames are JSON objects with a type")
            return None
        return frame

    async def _welcome(self, conn: Connection, claims: UserClaims, last_seq: int | None) -> None:
        repo = self.gateway.repo
        cursor, latest = await repo.resume_point(conn.user_id)
        if last_seq is not None:
            cursor = min(last_seq, latest)
        counts = await repo.counts(conn.user_id)
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

    async def _serve(self, conn: Connection) -> None:
        """The socket's one task reads client frames until the disconnect, which is also what
        a server-side close (Connection.close) makes the next receive() return."""
        with contextlib.suppress(WebSocketDisconnect):
            await self._read_loop(conn)

    async def _read_loop(self, conn: Connection) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if not self.bucket.take():
                conn.close(4008, "rate limited")
                return
            frame = await self._parse(message)
            if frame is None:
                return
            handler = self.handlers.get(frame["type"])
            try:
                if handler is None:
                    raise FrameError(f"unknown frame type {frame['type']!r}")
                await handler(conn, frame)
            except FrameError as exc:
                code = "unknown_type" if handler is None else "bad_frame"
                self._error(conn, frame, code, str(exc))

    def _error(self, conn: Connection, frame: dict[str, Any], code: str, message: str) -> None:
        error: dict[str, Any] = {"type": "error", "code": code, "message": message}
        ref = frame.get("ref")
        if isinstance(ref, str) and len(ref) <= 64:
            error["ref"] = ref
        conn.send_json(_json(error))

    # -- client frames ------------------------------------------------------------------

    async def _ack(self, conn: Connection, frame: dict[str, Any]) -> None:
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
        counts = await self.gateway.repo.counts(conn.user_id)
        conn.send_json(frames.unread_count(counts))

    async def _token(self, conn: Connection, frame: dict[str, Any]) -> None:
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
                latest: int | None = await self.gateway.repo.latest_seq(conn.user_id)
        except STORE_ERRORS:
            latest = None  # the pong still proves the socket alive
        pong = {"type": "pong", "t": t if isinstance(t, int | float) else None}
        conn.send_json(_json({**pong, "latestSeq": latest}))
        if latest is not None and latest > conn.last_seq:
            conn.request_sync()
