"""What the deploy files may name: the variables Tocsin reads, and the settings a service
would start with from a deploy file's environment."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping

import uvicorn.config

from gateway.settings import GatewaySettings
from shared.config import DispatcherSettings, Env, WorkerSettings
from shared.logs import LogSettings
from tests.support.processes import ROOT
from tocsin.secrets_store import generate_fallback

SOURCES = ["gateway", "dispatcher", "shared", "tocsin"]
_VERSION = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
IMAGE = f"tocsin:{_VERSION.group(1) if _VERSION else '?'}"  # what compose and k8s run
# Service and metrics ports: the services' defaults, and the contract's metrics listeners.
# The worker has no service port: its metrics listener serves /healthz and /readyz too.
DEFAULT_PORTS: dict[str, tuple[int | None, int]] = {
    "gateway": (GatewaySettings.port, 9080),  # a dataclass field's default
    "dispatcher": (DispatcherSettings.port, 9081),
    "worker": (None, 9082),
}
# Read by a library Tocsin runs on, not by Tocsin's code: uvicorn's trusted proxies.
LIBRARY_VARIABLES = {"FORWARDED_ALLOW_IPS": inspect.getsource(uvicorn.config)}
# Stand-ins for the values deploy files take from secrets.
SECRETS = {
    "DATABASE_URL": "postgresql://tocsin:password@postgres:5432/tocsin",
    "REDIS_URL": "redis://redis:6379/0",
    "TOCSIN_JWT_SECRET": "j" * 32,
    "TOCSIN_PRODUCER_KEYS": "tsk_" + "k" * 24,
}
# Stand-ins for the secrets an operator may leave out (the fallback's SMTP and VAPID): a deploy
# file must start without them and with all of them.
OPTIONAL_SECRETS = {
    **generate_fallback(),  # VAPID key pair and subject, unsubscribe secret
    "TOCSIN_SMTP_URL": "smtps://tocsin:password@smtp.example.com:465",
}

Settings = GatewaySettings | DispatcherSettings | WorkerSettings


def tocsin_variables() -> set[str]:
    """Every environment variable name Tocsin's code reads (as a string literal)."""
    names: set[str] = set()
    pattern = re.compile(r"\"((?:TOCSIN_[A-Z0-9_]+)|DATABASE_URL|REDIS_URL)\"")
    for package in SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    for name, source in LIBRARY_VARIABLES.items():
        if f'"{name}"' in source:
            names.add(name)
    return names


def service_settings(role: str, environ: Mapping[str, str]) -> Settings:
    """Parse a deploy file's environment as the service would at start-up (raises
    ConfigError naming the variable on a bad value)."""
    env = Env({**SECRETS, **environ})
    LogSettings.from_env({**SECRETS, **environ})
    if role == "gateway":
        return GatewaySettings.from_env(env)
    if role == "worker":
        return WorkerSettings.from_env(env)
    assert role == "dispatcher", role
    return DispatcherSettings.from_env(env)


def ports(settings: Settings) -> tuple[int | None, int]:
    """(service port, metrics port) as DEFAULT_PORTS has them."""
    if isinstance(settings, WorkerSettings):
        return None, settings.metrics_port
    return settings.port, settings.metrics_port
