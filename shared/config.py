"""Settings read once from the environment at start-up; an error names the bad variable.

Every variable is listed in the README's configuration table.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:  # shared.fallback_rules reads its settings with Env from here
    from shared.fallback_rules import Rules

T = TypeVar("T")

JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384")


class ConfigError(Exception):
    """A configuration variable is missing or has a bad value."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)
        self.name = name
        self.problem = problem

    def __str__(self) -> str:
        return f"configuration error: {self.name}: {self.problem}"


class Env:
    """Typed reads of environment variables that name the variable in every error."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def string(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise ConfigError(name, "is required but not set")
        return default

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int = 2**31) -> int:
        return self._parse(name, default, int, minimum, maximum, "an integer")

    def number(
        self, name: str, default: float, minimum: float = 0.0, maximum: float = 1e9
    ) -> float:
        return self._parse(name, default, float, minimum, maximum, "a number")

    def flag(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"must be true or false, got {raw!r}")

    def items(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        raw = self._environ.get(name, "")
        items = tuple(part.strip() for part in raw.split(",") if part.strip())
        return items or default

    def _parse(
        self,
        name: str,
        default: T,
        kind: Callable[[str], T],
        minimum: T,
        maximum: T,
        what: str,
    ) -> T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(name, f"must be {what}, got {raw!r}") from None
        if not (minimum <= value <= maximum):  # type: ignore[operator]
            raise ConfigError(name, f"must be between {minimum} and {maximum}, got {raw}")
        return value


@dataclass(frozen=True)
class StoreSettings:
    database_url: str
    redis_url: str
    pool_min: int = 2
    pool_max: int = 10

    @classmethod
    def from_env(cls, env: Env | None = None) -> StoreSettings:
        env = env or Env()
        url = env.string("DATABASE_URL")
        if not url.startswith(("postgres://", "postgresql://")):
            raise ConfigError("DATABASE_URL", "must be a postgresql:// URL")
        redis_url = env.string("REDIS_URL")
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL", "must be a redis://, rediss:// or unix:// URL")
        return cls(
            database_url=url,
            redis_url=redis_url,
            pool_min=env.integer("TOCSIN_DB_POOL_MIN", 2, 0, 1000),
            pool_max=env.integer("TOCSIN_DB_POOL_MAX", 10, 1, 1000),
        )


@dataclass(frozen=True)
class JwtSettings:
    """How browser tokens are verified. HS* uses `secret`; RS*/ES* use `public_key`."""

    algorithm: str
    secret: str | None
    public_key: str | None
    audience: str
    issuer: str
    leeway_seconds: int = 10
    max_ttl: float | None = None  # seconds a token may live (exp - iat); None: no limit

    @property
    def verification_key(self) -> str:
        key = self.secret if self.algorithm.startswith("HS") else self.public_key
        assert key is not None  # enforced in from_env
        return key

    @classmethod
    def from_env(cls, env: Env | None = None) -> JwtSettings:
        env = env or Env()
        algorithm = env.string("TOCSIN_JWT_ALGORITHM", "HS256").upper()
        if algorithm not in JWT_ALGORITHMS:
            raise ConfigError("TOCSIN_JWT_ALGORITHM", f"must be one of {', '.join(JWT_ALGORITHMS)}")
        secret = env.optional("TOCSIN_JWT_SECRET")
        public_key = _read_key(env.optional("TOCSIN_JWT_PUBLIC_KEY"))
        if algorithm.startswith("HS"):
            if secret is None:
                raise ConfigError("TOCSIN_JWT_SECRET", f"is required for {algorithm}")
            if len(secret) < 32:
                raise ConfigError("TOCSIN_JWT_SECRET", "must be at least 32 characters")
        elif public_key is None:
            raise ConfigError("TOCSIN_JWT_PUBLIC_KEY", f"is required for {algorithm}")
        return cls(
            algorithm=algorithm,
            secret=secret,
            public_key=public_key,
            audience=env.string("TOCSIN_JWT_AUDIENCE", "tocsin"),
            issuer=env.string("TOCSIN_JWT_ISSUER", "tocsin"),
            leeway_seconds=env.integer("TOCSIN_JWT_LEEWAY", 10, 0, 300),
            max_ttl=env.number("TOCSIN_JWT_MAX_TTL", 0.0, 0.0, 1e8) or None,
        )


def _read_key(value: str | None) -> str | None:
    """A PEM given inline or as a path to a file."""
    if value is None or value.startswith("-----BEGIN"):
        return value
    path = Path(value)
    if not path.is_file():
        raise ConfigError("TOCSIN_JWT_PUBLIC_KEY", f"is neither a PEM key nor a file: {value}")
    return path.read_text()


@dataclass(frozen=True)
class DispatcherSettings:
    store: StoreSettings
    producer_keys: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8081
    max_recipients: int = 10_000
    max_body_bytes: int = 1_048_576
    node_id: str = "dispatcher-local"
    fallback_rules: Rules = field(default_factory=lambda: fallback_rules(Env({})))
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: /metrics on the service port
    outbox_delay: float = 1.0  # seconds a row stays unpublished before it is re-published
    outbox_interval: float = 0.25  # seconds between outbox scans

    @classmethod
    def from_env(cls, env: Env | None = None) -> DispatcherSettings:
        env = env or Env()
        keys = env.items("TOCSIN_PRODUCER_KEYS")
        if not keys:
            raise ConfigError(
                "TOCSIN_PRODUCER_KEYS", "is required: comma-separated producer API keys"
            )
        if any(len(key) < 16 for key in keys):
            raise ConfigError("TOCSIN_PRODUCER_KEYS", "every key must be at least 16 characters")
        host = env.string("TOCSIN_DISPATCHER_HOST", "127.0.0.1")
        port = env.integer("TOCSIN_DISPATCHER_PORT", 8081, 0, 65535)
        metrics_host, metrics_port = metrics_listener(
            env, "TOCSIN_DISPATCHER_METRICS_PORT", host, port
        )
        return cls(
            store=StoreSettings.from_env(env),
            producer_keys=keys,
            host=host,
            port=port,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            max_recipients=env.integer("TOCSIN_MAX_RECIPIENTS", 10_000, 1, 1_000_000),
            max_body_bytes=env.integer("TOCSIN_MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
            node_id=env.string("TOCSIN_NODE_ID", default_node_id()),
            outbox_delay=env.number("TOCSIN_OUTBOX_DELAY", 1.0, 0.0, 3600.0),
            outbox_interval=env.number("TOCSIN_OUTBOX_INTERVAL", 0.25, 0.01, 60.0),
            fallback_rules=fallback_rules(env),
        )


def fallback_rules(env: Env) -> Rules:
    """TOCSIN_FALLBACK_DEFAULT and the delays, for the dispatcher and the gateway."""
    from shared.fallback_rules import Rules  # it imports this module

    return Rules.from_env(env)


def default_node_id() -> str:
    """Unique per process: host, pid and a random part (a pid repeats across containers)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def metrics_listener(env: Env, variable: str, host: str, port: int) -> tuple[str, int]:
    """Host and port of a service's separate `/metrics` listener (port 0: none, /metrics is
    served on the service port). `variable` names the service's metrics-port variable."""
    metrics_port = env.integer(variable, 0, 0, 65535)
    if metrics_port and metrics_port == port:
        raise ConfigError(variable, f"must differ from the service port ({port})")
    return env.string("TOCSIN_METRICS_HOST", host), metrics_port


# -- the fallback worker (`tocsin worker`, docs/fallback.md) --------------------------------

SMTP_SCHEMES = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpSettings:
    """From TOCSIN_SMTP_URL: smtp://user:pass@host:port (`?starttls=true` upgrades the
    connection, default port 587), smtps:// (TLS from the first byte, default port 465)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    starttls: bool = False
    timeout: float = 20.0

    @classmethod
    def from_url(cls, url: str, timeout: float = 20.0) -> SmtpSettings:
        name = "TOCSIN_SMTP_URL"
        parts = urlsplit(url)
        if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
            raise ConfigError(name, "must look like smtp://user:pass@host:port or smtps://...")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes", "on")
        tls = parts.scheme == "smtps"
        if tls and starttls:
            raise ConfigError(name, "smtps:// is TLS already; drop ?starttls=true")
        try:
            port = parts.port or (587 if starttls else SMTP_SCHEMES[parts.scheme])
        except ValueError:
            raise ConfigError(name, "has a bad port") from None
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            starttls=starttls,
            timeout=timeout,
        )


@dataclass(frozen=True)
class EmailSettings:
    smtp: SmtpSettings
    sender: str  # TOCSIN_EMAIL_FROM
    public_url: str  # TOCSIN_PUBLIC_URL, no trailing slash
    unsubscribe_secret: str
    templates: str | None = None  # TOCSIN_EMAIL_TEMPLATES: a folder of overrides


@dataclass(frozen=True)
class VapidSettings:
    private_key: str  # raw P-256 private key, base64url (32 bytes)
    public_key: str  # uncompressed point, base64url (65 bytes): the applicationServerKey
    subject: str  # mailto: or https: contact for push services
    ttl: int = 86_400  # seconds a push service keeps an undelivered message
    timeout: float = 10.0


@dataclass(frozen=True)
class WorkerSettings:
    database_url: str
    email: EmailSettings | None  # None: SMTP not configured, email jobs are cancelled
    vapid: VapidSettings | None  # None: VAPID not configured, push jobs are cancelled
    node_id: str = "worker-local"
    pool_max: int = 10
    concurrency: int = 8  # jobs (or digest groups) in flight at once
    poll_interval: float = 1.0  # seconds between claims when nothing was due
    lease: float = 120.0  # seconds a claimed job is held before another worker may take it
    max_attempts: int = 16
    retry_base: float = 5.0  # seconds; doubled per attempt, capped at retry_max
    retry_max: float = 900.0
    digest_window: float = 300.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 8082  # /healthz, /readyz and /metrics; 0: none

    @classmethod
    def from_env(cls, env: Env | None = None) -> WorkerSettings:
        env = env or Env()
        url = env.string("DATABASE_URL")
        if not url.startswith(("postgres://", "postgresql://")):
            raise ConfigError("DATABASE_URL", "must be a postgresql:// URL")
        settings = cls(
            database_url=url,
            email=_email_settings(env),
            vapid=_vapid_settings(env),
            node_id=env.string("TOCSIN_NODE_ID", default_node_id()),
            pool_max=env.integer("TOCSIN_DB_POOL_MAX", 10, 2, 1000),
            concurrency=env.integer("TOCSIN_WORKER_CONCURRENCY", 8, 1, 1000),
            poll_interval=env.number("TOCSIN_WORKER_POLL_INTERVAL", 1.0, 0.01, 60.0),
            lease=env.number("TOCSIN_WORKER_LEASE", 120.0, 1.0, 86_400.0),
            max_attempts=env.integer("TOCSIN_WORKER_MAX_ATTEMPTS", 16, 1, 100),
            retry_base=env.number("TOCSIN_WORKER_RETRY_BASE", 5.0, 0.01, 3600.0),
            retry_max=env.number("TOCSIN_WORKER_RETRY_MAX", 900.0, 0.01, 86_400.0),
            digest_window=env.number("TOCSIN_DIGEST_WINDOW", 300.0, 0.0, 86_400.0),
            metrics_host=env.string("TOCSIN_METRICS_HOST", "127.0.0.1"),
            metrics_port=env.integer("TOCSIN_WORKER_METRICS_PORT", 8082, 0, 65535),
        )
        longest = max(
            settings.email.smtp.timeout if settings.email else 0.0,
            settings.vapid.timeout if settings.vapid else 0.0,
        )
        if settings.lease <= longest:
            raise ConfigError(
                "TOCSIN_WORKER_LEASE", f"must exceed the longest send timeout ({longest:g} s)"
            )
        return settings


def unsubscribe_secret(env: Env) -> str | None:
    """TOCSIN_UNSUBSCRIBE_SECRET, which signs unsubscribe links (the worker and gateway)."""
    secret = env.optional("TOCSIN_UNSUBSCRIBE_SECRET")
    if secret is not None and len(secret) < 32:
        raise ConfigError("TOCSIN_UNSUBSCRIBE_SECRET", "must be at least 32 characters")
    return secret


def _email_settings(env: Env) -> EmailSettings | None:
    url = env.optional("TOCSIN_SMTP_URL")
    if url is None:
        return None
    timeout = env.number("TOCSIN_SMTP_TIMEOUT", 20.0, 1.0, 600.0)
    smtp = SmtpSettings.from_url(url, timeout)
    sender = env.string("TOCSIN_EMAIL_FROM")
    if "@" not in sender:
        raise ConfigError("TOCSIN_EMAIL_FROM", "must be an address, e.g. Tocsin <no-reply@...>")
    public_url = env.string("TOCSIN_PUBLIC_URL").rstrip("/")
    if urlsplit(public_url).scheme not in ("http", "https"):
        raise ConfigError("TOCSIN_PUBLIC_URL", "must be an http(s) URL")
    secret = unsubscribe_secret(env)
    if secret is None:
        raise ConfigError("TOCSIN_UNSUBSCRIBE_SECRET", "is required when TOCSIN_SMTP_URL is set")
    templates = env.optional("TOCSIN_EMAIL_TEMPLATES")
    if templates is not None and not Path(templates).is_dir():
        raise ConfigError("TOCSIN_EMAIL_TEMPLATES", f"is not a folder: {templates}")
    return EmailSettings(smtp, sender, public_url, secret, templates)


def _vapid_settings(env: Env) -> VapidSettings | None:
    names = ("TOCSIN_VAPID_PRIVATE_KEY", "TOCSIN_VAPID_PUBLIC_KEY", "TOCSIN_VAPID_SUBJECT")
    values = [env.optional(name) for name in names]
    if not any(values):
        return None
    for name, value in zip(names, values, strict=True):
        if value is None:
            raise ConfigError(name, "is required when any TOCSIN_VAPID_* variable is set")
    private_key, public_key, subject = (v or "" for v in values)
    if not subject.startswith(("mailto:", "https://")):
        raise ConfigError("TOCSIN_VAPID_SUBJECT", "must start with mailto: or https://")
    return VapidSettings(
        private_key=private_key,
        public_key=public_key,
        subject=subject,
        ttl=env.integer("TOCSIN_PUSH_TTL", 86_400, 0, 2_419_200),
        timeout=env.number("TOCSIN_PUSH_TIMEOUT", 10.0, 0.5, 600.0),
    )
