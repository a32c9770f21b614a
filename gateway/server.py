"""Run one gateway node under uvicorn, draining sockets before uvicorn's own shutdown.

uvicorn alone closes every socket with 1012 at once on SIGTERM; draining first sends each
client a jittered `reconnect` delay so 10,000 clients do not return in the same second."""

from __future__ import annotations

import asyncio
import socket
from http import HTTPStatus

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import State
from websockets.server import ServerProtocol

from gateway.app import create_app
from gateway.runtime import Gateway
from gateway.session import SUBPROTOCOL, admitted, serve_socket
from gateway.settings import GatewaySettings
from gateway.upgrade import WS_PATH, Upgrade, from_headers
from gateway.wire import FrameReceiver
from shared.gc_tuning import settle_after_startup

KEEP_ALIVE_SECONDS = 5  # a proxy's upstream keepalive_timeout must be shorter (nginx: 4s)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self._gateway = gateway

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        settle_after_startup()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting first; the load balancer moves on
        await self._gateway.drain()
        await super().shutdown(sockets)


class DeadlineCloseProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, serving /v1/ws itself: the upgrade and the
    session start without ASGI, frames are written straight to the transport
    (gateway.wire.DirectSocket), and a detached session gets client frames as they arrive.

    Its close frame never waits for the peer. uvicorn awaits `writable` before every ASGI
    send, the close included, so a peer that stopped reading kept its close frame from ever
    leaving. Here the close frame goes behind what is already buffered: a peer that reads
    again gets it. If the buffer has not reached the kernel by the deadline (or the peer has
    not answered the close), the connection ends: closed when the close frame is in the
    kernel, aborted when it is not."""

    close_deadline = 2.0

    def _send_close(self, code: int, reason: str) -> None:
        try:
            self.conn.send_close(code, reason)
        except InvalidState:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:  # keep reading: the peer's close answer ends the handshake
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_deadline, self._deadline_passed)
        self._gone()

    # -- /v1/ws: upgraded and served here, not through the ASGI app ----------------------

    gateway: Gateway | None = None  # set by websocket_protocol()

    def take(self, upgrade: Upgrade) -> None:
        """An upgrade to /v1/ws, read from httptools' headers (gateway/upgrade.py). Any other
        upgrade goes uvicorn's way: websockets' checks, then the app, which refuses it."""
        self.conn = ServerProtocol(
            max_size=self.config.ws_max_size, logger=self.conn.logger, state=State.OPEN
        )
        self._answer(upgrade)

    def _answer(self, upgrade: Upgrade) -> None:
        """Answer the upgrade and start the session at once: no ASGI scope, messages, routing
        or middleware (as much CPU per connect as everything else on the path, issue 9)."""
        gateway = self.gateway
        assert gateway is not None
        self.handshake_initiated = self.handshake_complete = True
        if not admitted(gateway, upgrade.origin):
            self.close_sent = True
            self.transport.write(self.conn.reject(HTTPStatus.FORBIDDEN, "").serialize())
            self.transport.close()
            return
        subprotocol = SUBPROTOCOL if SUBPROTOCOL in upgrade.offered else None
        self.transport.write(upgrade.response(subprotocol, self.default_headers))
        self.start_keepalive()
        task = self.loop.create_task(self._serve(gateway))
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    async def _serve(self, gateway: Gateway) -> None:
        await serve_socket(gateway, self)
        if self.close_timer is None and self.receiver is None:
            self.transport.close()  # the session ended before detaching, without a close

    # -- gateway.wire.DirectSocket: frames written without an ASGI message each ----------

    def write(self, frame: bytes) -> bool:
        if not self._open():
            return False
        self.transport.write(frame)
        return True

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def set_high_water(self, high: int) -> None:
        self.transport.set_write_buffer_limits(high=high)

    def close_now(self, code: int, reason: str) -> None:
        """The close frame goes behind what is buffered; the app's next receive() is the
        disconnect. Nothing to do when the socket is already closing or gone."""
        if self._open():
            self._send_close(code, reason)

    # -- detached: frames to a FrameReceiver, no ASGI task per idle socket -------------

    receiver: FrameReceiver | None = None
    _receiver_told = False

    def detach(self, receiver: FrameReceiver) -> None:
        self.receiver = receiver
        # The handshake's request and response are not read again: not kept per idle socket.
        self.request = self.response = None  # type: ignore[assignment]
        while not self.queue.empty():  # what arrived before, in order
            message = self.queue.get_nowait()
            if message["type"] == "websocket.receive":
                receiver.on_frame(message.get("text"))
            else:
                self._gone()
        if self.read_paused and not self.close_sent:
            self.read_paused = False
            self.transport.resume_reading()
        if self.disconnected:
            self._gone()

    def send_receive_event_to_app(self) -> None:
        receiver = self.receiver
        if receiver is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # past the close: only the peer's close answer matters now
        # websockets has already checked a text message is valid UTF-8 (else close 1007).
        receiver.on_frame(data.decode() if self.curr_msg_data_type == "text" else None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._gone()

    def _gone(self) -> None:
        if self.receiver is not None and not self._receiver_told:
            self._receiver_told = True
            self.receiver.on_disconnect()

    def keepalive_timeout(self) -> None:
        # uvicorn sends 1011 and closes; a close waits for the buffer to drain, so bound it.
        super().keepalive_timeout()
        if self.close_timer is None:
            self.close_timer = self.loop.call_later(self.close_deadline, self._deadline_passed)

    def _open(self) -> bool:
        return (
            self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and not self.transport.is_closing()
        )

    def _deadline_passed(self) -> None:
        self.close_timer = None
        if self.transport.get_write_buffer_size():
            self.transport.abort()  # the close frame is still ours: the peer sees 1006
        else:
            self.transport.close()  # the kernel holds the close frame and delivers it


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; an ordinary upgrade to /v1/ws goes to the WebSocket
    protocol with the headers already parsed here (gateway/upgrade.py), not written out
    again for websockets to parse."""

    def handle_websocket_upgrade(self) -> None:
        protocol = self.ws_protocol_class
        upgrade = None
        if self.scope["method"] == "GET" and self.url.partition(b"?")[0] == WS_PATH:
            upgrade = from_headers(self.headers)
        if (
            upgrade is None
            or protocol is None
            or not issubclass(protocol, DeadlineCloseProtocol)
            or protocol.gateway is None
        ):
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        socket = protocol(
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        socket.connection_made(self.transport)
        self.transport.set_protocol(socket)
        socket.take(upgrade)


def websocket_protocol(gateway: Gateway) -> type[asyncio.Protocol]:
    """The WebSocket protocol class for uvicorn.Config(ws=...), serving this node's /v1/ws."""
    attributes = {"close_deadline": gateway.settings.close_deadline, "gateway": gateway}
    return type("GatewayWebSocketProtocol", (DeadlineCloseProtocol,), attributes)


def uvicorn_config(settings: GatewaySettings, log_level: str = "info") -> uvicorn.Config:
    app = create_app(settings)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=GatewayHttpProtocol,
        ws=websocket_protocol(app.state.gateway),
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=max(1.0, settings.idle_timeout - settings.ping_interval),
        ws_per_message_deflate=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
        log_config=None,  # tocsin.serve configured logging (shared/logs.py); keep it
        log_level=log_level,
        proxy_headers=True,
        # uvicorn's only HTTP read limit: an idle keep-alive connection is closed after this
        # many seconds. Header size (httptools has no limit) and a header read timeout are the
        # proxy's job (docs/operations.md, deploy/nginx.conf).
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


def serve(settings: GatewaySettings, log_level: str = "info") -> bool:
    """Run until SIGTERM/SIGINT; False when the node never started (e.g. port taken)."""
    config = uvicorn_config(settings, log_level)
    server = DrainingServer(config, gateway_of(config))
    server.run()
    return server.started


def gateway_of(config: uvicorn.Config) -> Gateway:
    """The node's Gateway, kept by the app uvicorn_config() made."""
    assert isinstance(config.app, Starlette)
    gateway = config.app.state.gateway
    assert isinstance(gateway, Gateway)
    return gateway
