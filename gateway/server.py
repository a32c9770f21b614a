"""Run one gateway node under uvicorn, draining sockets before uvicorn's own shutdown.

uvicorn alone closes every socket with 1012 at once on SIGTERM; draining first sends each
client a jittered `reconnect` delay so 10,000 clients do not return in the same second."""

from __future__ import annotations

import socket

import uvicorn

from gateway.app import create_app
from gateway.runtime import Gateway
from gateway.settings import GatewaySettings


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self._gateway = gateway

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting first; the load balancer moves on
        await self._gateway.drain()
        await super().shutdown(sockets)


def uvicorn_config(settings: GatewaySettings, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=max(1.0, settings.idle_timeout - settings.ping_interval),
        ws_per_message_deflate=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
        log_config=None,  # tocsin.serve configured logging (shared/logs.py); keep it
        log_level=log_level,
        proxy_headers=True,
    )


def serve(settings: GatewaySettings, log_level: str = "info") -> bool:
    """Run until SIGTERM/SIGINT; False when the node never started (e.g. port taken)."""
    config = uvicorn_config(settings, log_level)
    config.load()
    server = DrainingServer(config, _find_gateway(config.loaded_app))
    server.run()
    return server.started


def _find_gateway(app: object) -> Gateway:
    """config.load() wraps the app in middleware; the Starlette app keeps the gateway."""
    while not hasattr(app, "state"):
        app = app.app  # type: ignore[attr-defined]
    gateway = app.state.gateway
    assert isinstance(gateway, Gateway)
    return gateway
