"""Gateway settings, read once from the environment (README: "Gateway settings")."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
from dataclasses import dataclass, field

from shared.config import (
    ConfigError,
    Env,
    JwtSettings,
    StoreSettings,
    default_node_id,
    fallback_rules,
    metrics_listener,
    unsubscribe_secret,
)
from shared.fallback_rules import Rules

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class GatewaySettings:
    store: StoreSettings
    jwt: JwtSettings
    host: str = "127.0.0.1"
    port: int = 8080
    allowed_origins: tuple[str, ...] = ()  # "*" allows any; no Origin header is allowed
    node_id: str = "gw-local"
    presence_ttl: float = 30.0
    send_queue: int = 1024
    send_buffer_bytes: int = 1_048_576
    max_message_bytes: int = 65_536
    rate_per_second: float = 20.0
    rate_burst: int = 40
    ping_interval: float = 25.0
    idle_timeout: float = 60.0
    hello_timeout: float = 10.0
    shutdown_grace: float = 10.0
    reconnect_spread: float = 10.0
    backlog_page: int = 200
    ack_flush_interval: float = 0.2
    max_sockets_per_user: int = 20  # per node; the next one is closed with 4013
    close_deadline: float = 2.0  # seconds a close frame (or a backlog page) waits to be taken
    rest_max_body: int = 65_536  # bytes of a REST request body
    store_poll_interval: float = 1.0  # seconds between store reads while pub/sub is down
    demo: bool = False
    dispatcher_url: str = "http://127.0.0.1:8081"
    producer_key: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: /metrics on the service port
    vapid_public_key: str | None = None  # web push application server key (base64url)
    unsubscribe_secret: str | None = None  # signs the emails' unsubscribe links
    fallback_rules: Rules = field(default_factory=lambda: fallback_rules(Env({})))
    processes: int = 1  # gateway nodes this command runs on one port (gateway/processes.py)

    def origin_allowed(self, origin: str | None) -> bool:
        """Browsers always send Origin; a socket without one is not a cross-site page."""
        if origin is None:
            return True
        return "*" in self.allowed_origins or origin in self.allowed_origins

    @classmethod
    def from_env(cls, env: Env | None = None) -> GatewaySettings:
        env = env or Env()
        port = env.integer("TOCSIN_GATEWAY_PORT", 8080, 0, 65535)
        local = (f"http://127.0.0.1:{port}", f"http://localhost:{port}")
        demo = env.flag("TOCSIN_DEMO", False)
        producer_key = env.optional("TOCSIN_PRODUCER_KEY") or next(
            iter(env.items("TOCSIN_PRODUCER_KEYS")), None
        )
        if demo and producer_key is None:
            raise ConfigError("TOCSIN_PRODUCER_KEY", "is required when TOCSIN_DEMO is on")
        host = env.string("TOCSIN_GATEWAY_HOST", "127.0.0.1")
        metrics_host, metrics_port = metrics_listener(
            env, "TOCSIN_GATEWAY_METRICS_PORT", host, port
        )
        return cls(
            store=StoreSettings.from_env(env),
            jwt=JwtSettings.from_env(env),
            host=host,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            port=port,
            allowed_origins=env.items("TOCSIN_ALLOWED_ORIGINS", local),
            node_id=env.string("TOCSIN_NODE_ID", default_node_id()),
            presence_ttl=env.number("TOCSIN_PRESENCE_TTL", 30.0, 1.0, 3600.0),
            send_queue=env.integer("TOCSIN_WS_SEND_QUEUE", 1024, 8, 1_000_000),
            send_buffer_bytes=env.integer("TOCSIN_WS_SEND_BUFFER", 1_048_576, 4096, 1_073_741_824),
            max_message_bytes=env.integer("TOCSIN_WS_MAX_MESSAGE", 65_536, 1024, 16_777_216),
            rate_per_second=env.number("TOCSIN_WS_RATE", 20.0, 0.1, 100_000.0),
            rate_burst=env.integer("TOCSIN_WS_BURST", 40, 1, 1_000_000),
            ping_interval=env.number("TOCSIN_WS_PING_INTERVAL", 25.0, 1.0, 3600.0),
            idle_timeout=env.number("TOCSIN_WS_IDLE_TIMEOUT", 60.0, 1.0, 3600.0),
            hello_timeout=env.number("TOCSIN_WS_HELLO_TIMEOUT", 10.0, 0.5, 600.0),
            shutdown_grace=env.number("TOCSIN_SHUTDOWN_GRACE", 10.0, 0.0, 600.0),
            reconnect_spread=env.number("TOCSIN_RECONNECT_SPREAD", 10.0, 0.0, 600.0),
            backlog_page=env.integer("TOCSIN_BACKLOG_PAGE", 200, 1, 10_000),
            ack_flush_interval=env.number("TOCSIN_ACK_FLUSH_INTERVAL", 0.2, 0.01, 60.0),
            max_sockets_per_user=env.integer("TOCSIN_WS_MAX_SOCKETS_PER_USER", 20, 1, 100_000),
            close_deadline=env.number("TOCSIN_WS_CLOSE_DEADLINE", 2.0, 0.1, 60.0),
            rest_max_body=env.integer("TOCSIN_REST_MAX_BODY", 65_536, 1024, 16_777_216),
            store_poll_interval=env.number("TOCSIN_STORE_POLL_INTERVAL", 1.0, 0.05, 60.0),
            demo=demo,
            dispatcher_url=env.string("TOCSIN_DISPATCHER_URL", "http://127.0.0.1:8081"),
            producer_key=producer_key,
            vapid_public_key=vapid_public_key(env),
            unsubscribe_secret=unsubscribe_secret(env),
            fallback_rules=fallback_rules(env),
            processes=gateway_processes(env),
        )


MAX_PROCESSES = 256


def gateway_processes(env: Env) -> int:
    """TOCSIN_GATEWAY_PROCESSES: a count, or `auto` for one per core (os.cpu_count())."""
    name = "TOCSIN_GATEWAY_PROCESSES"
    raw = env.optional(name)
    if raw is None:
        return 1
    if raw.lower() == "auto":
        return max(1, min(os.cpu_count() or 1, MAX_PROCESSES))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PROCESSES:
        raise ConfigError(name, f"must be a count from 1 to {MAX_PROCESSES} or auto, got {raw!r}")
    return int(raw)


def vapid_public_key(env: Env) -> str | None:
    """TOCSIN_VAPID_PUBLIC_KEY: the uncompressed P-256 point, base64url, as browsers take it."""
    value = env.optional("TOCSIN_VAPID_PUBLIC_KEY")
    if value is None:
        return None
    bare = value.rstrip("=")
    raw = b""
    if _BASE64URL.fullmatch(bare):
        with contextlib.suppress(binascii.Error, ValueError):
            raw = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    if len(raw) != 65 or raw[0] != 4:
        raise ConfigError(
            "TOCSIN_VAPID_PUBLIC_KEY", "must be a base64url uncompressed P-256 public key"
        )
    return value
