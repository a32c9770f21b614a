"""`tocsin dispatcher` and `tocsin gateway`: one service in this process, under uvicorn."""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping

from shared import logs
from shared.config import DispatcherSettings, Env, WorkerSettings

DISPATCHER_SHUTDOWN_GRACE = 10  # seconds for in-flight requests after SIGTERM


def log_level(environ: Mapping[str, str]) -> str:
    """TOCSIN_LOG_LEVEL, validated (TOCSIN_LOG_FORMAT too): a ConfigError names a bad one."""
    return logs.LogSettings.from_env(environ).level


def serve_dispatcher(environ: Mapping[str, str]) -> int:
    settings = DispatcherSettings.from_env(Env(environ))
    log = logs.LogSettings.from_env(environ)
    logs.configure(log, secrets=settings.producer_keys)
    import uvicorn

    from dispatcher.app import create_app
    from shared.gc_tuning import settle_after_startup

    class SettledServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            settle_after_startup()

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="none",  # the producer API has no WebSocket route
        lifespan="on",
        log_config=None,  # ours, configured above; uvicorn would install its own
        log_level=log.level,
        timeout_graceful_shutdown=DISPATCHER_SHUTDOWN_GRACE,
        timeout_keep_alive=5,  # as the gateway (gateway/server.py); header limits: the proxy
    )
    server = SettledServer(config)
    server.run()
    return 0 if server.started else 3  # 3: uvicorn's own code for a failed start-up


def serve_gateway(environ: Mapping[str, str], reuse_port: bool = False) -> int:
    """One node; or, with TOCSIN_GATEWAY_PROCESSES above 1, a supervisor of that many nodes
    on the one port (gateway/processes.py), each started as `tocsin gateway --reuse-port`."""
    from gateway.settings import GatewaySettings

    settings = GatewaySettings.from_env(Env(environ))
    log = logs.LogSettings.from_env(environ)
    secrets = [s for s in (settings.jwt.secret, settings.producer_key) if s]
    logs.configure(log, secrets=secrets)
    if settings.processes > 1:
        from gateway.processes import supervise

        node = [sys.executable, "-m", "tocsin", "gateway", "--reuse-port"]
        return supervise(settings, environ, node)
    if reuse_port:
        from gateway.processes import serve_node

        return 0 if serve_node(settings, log.level) else 3
    from gateway.server import serve

    return 0 if serve(settings, log.level) else 3  # 3: as the dispatcher


def serve_worker(environ: Mapping[str, str]) -> int:
    settings = WorkerSettings.from_env(Env(environ))
    log = logs.LogSettings.from_env(environ)
    secrets = [settings.vapid.private_key] if settings.vapid else []
    if settings.email is not None:
        secrets += [settings.email.unsubscribe_secret, settings.email.smtp.password or ""]
    logs.configure(log, secrets=secrets)
    from dispatcher.fallback.service import serve

    return 0 if serve(settings, log.level) else 3  # 3: as the dispatcher
