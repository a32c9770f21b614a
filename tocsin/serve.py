"""`tocsin dispatcher` and `tocsin gateway`: one service in this process, under uvicorn."""

from __future__ import annotations

from collections.abc import Mapping

from shared.config import ConfigError, DispatcherSettings, Env

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
DISPATCHER_SHUTDOWN_GRACE = 10  # seconds for in-flight requests after SIGTERM


def log_level(environ: Mapping[str, str]) -> str:
    level = Env(environ).string("TOCSIN_LOG_LEVEL", "info").lower()
    if level not in LOG_LEVELS:
        raise ConfigError("TOCSIN_LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def serve_dispatcher(environ: Mapping[str, str]) -> int:
    settings = DispatcherSettings.from_env(Env(environ))
    level = log_level(environ)
    import uvicorn

    from dispatcher.app import create_app
    from dispatcher.metrics import RequestMetrics

    config = uvicorn.Config(
        RequestMetrics(create_app(settings)),  # outermost: times the whole request
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="none",  # the producer API has no WebSocket route
        lifespan="on",
        log_level=level,
        timeout_graceful_shutdown=DISPATCHER_SHUTDOWN_GRACE,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 3  # 3: uvicorn's own code for a failed start-up


def serve_gateway(environ: Mapping[str, str]) -> int:
    from gateway.server import serve
    from gateway.settings import GatewaySettings

    settings = GatewaySettings.from_env(Env(environ))
    return 0 if serve(settings, log_level(environ)) else 3  # 3: as the dispatcher
