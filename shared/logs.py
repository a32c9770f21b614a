"""Logging for every Tocsin process, configured once with `dictConfig`.

JSON lines (time, level, logger, message, request_id / connection_id, exc) by default when
stderr is not a terminal, readable text on one. `TOCSIN_LOG_LEVEL` drives Tocsin's loggers and
uvicorn's alike; probe and scrape access lines, and the per-WebSocket open lines, are
demoted to DEBUG. Every line goes through
`redact` so a credential that slips into a message never reaches the output.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from shared import serialization
from shared.config import ConfigError, Env

REQUEST_ID: ContextVar[str | None] = ContextVar("tocsin_request_id", default=None)
CONNECTION_ID: ContextVar[str | None] = ContextVar("tocsin_connection_id", default=None)

TRACE = 5  # uvicorn's extra level below DEBUG
LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": TRACE}
FORMATS = ("auto", "json", "text")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes
MIN_SECRET_LENGTH = 8  # shorter configured "secrets" would blank ordinary words

_HIDDEN = "***"
# Each with the lower-case strings one of which an ASCII line must hold for it to match: most
# lines (every access line) hold none, and `in` is far cheaper than a regex scan.
_PATTERNS = (
    # userinfo password of a URL: postgresql://user:pass@host, redis://:pass@host
    (
        re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.I),
        r"\1:" + _HIDDEN + "@",
        ("://",),
    ),
    (re.compile(r"\b(Bearer|Basic)\s+[^\s'\",;]+", re.I), r"\1 " + _HIDDEN, ("bearer", "basic")),
    (re.compile(r"\beyJ[\w-]{4,}(\.[\w-]*){0,2}"), _HIDDEN, ("eyj",)),  # a JWT (or its header)
    (
        re.compile(
            r"([?&](?:access_)?(?:token|key|api_key|apikey|secret|password|jwt)=)[^&\s\"']+"
        ),
        r"\1" + _HIDDEN,
        ("=",),
    ),
)


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    format: str = "auto"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LogSettings:
        env = Env(environ)
        level = env.string("TOCSIN_LOG_LEVEL", "info").lower()
        if level not in LEVELS:
            raise ConfigError("TOCSIN_LOG_LEVEL", f"must be one of {', '.join(LEVELS)}")
        fmt = env.string("TOCSIN_LOG_FORMAT", "auto").lower()
        if fmt not in FORMATS:
            raise ConfigError("TOCSIN_LOG_FORMAT", f"must be one of {', '.join(FORMATS)}")
        return cls(level, fmt)


def resolve_format(fmt: str, stream: TextIO | None = None) -> str:
    """`auto` is text on a terminal, JSON lines anywhere else."""
    if fmt != "auto":
        return fmt
    stream = stream or sys.stderr
    return "text" if stream.isatty() else "json"


class Redactor:
    """Hides credentials: URL passwords, bearer values, JWTs, query tokens, known secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        known = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(s) for s in known)) if known else None

    def __call__(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(_HIDDEN, text)
        # Past ASCII, re.I matches more than lower() shows (the long s matches "s"): scan.
        folded = text.lower() if text.isascii() else None
        for pattern, replacement, needles in _PATTERNS:
            if folded is None or any(map(folded.__contains__, needles)):
                text = pattern.sub(replacement, text)
        return text


redact = Redactor()


class ContextFilter(logging.Filter):
    """Copies the request and connection ids of the current task onto the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.connection_id = CONNECTION_ID.get()
        return True


class ProbeFilter(logging.Filter):
    """uvicorn access lines for /healthz, /readyz and /metrics count as DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str)):
            return True
        if args[2].partition("?")[0] not in QUIET_PATHS:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class SocketFilter(logging.Filter):
    """uvicorn's and websockets' two info lines per accepted WebSocket count as DEBUG: a
    reconnect storm of 10,000 tabs would otherwise write 20,000 lines (and spend the CPU)."""

    PER_SOCKET = frozenset({"connection open", '%s - "WebSocket %s" [accepted]'})

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in self.PER_SOCKET:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor = redact) -> None:
        super().__init__()
        self.redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        for name in ("request_id", "connection_id"):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.redact(self.formatException(record.exc_info))
        elif record.stack_info:
            line["exc"] = self.redact(self.formatStack(record.stack_info))
        return serialization.dumps(line).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor = redact) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s%(ids)s")
        self.redact = redactor

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = datetime.fromtimestamp(record.created).astimezone()
        return stamp.isoformat(sep=" ", timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{name}={value}"
            for name in ("request_id", "connection_id")
            if (value := getattr(record, name, None)) is not None
        ]
        record.ids = f" [{' '.join(ids)}]" if ids else ""
        return self.redact(super().format(record))


def config(level: str, fmt: str, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The `dictConfig` dict: one stderr handler; Tocsin and uvicorn loggers at `level`."""
    redactor = Redactor(secrets)
    formatter = JsonFormatter if resolve_format(fmt) == "json" else TextFormatter
    numeric = LEVELS[level]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": ContextFilter},
            "probes": {"()": ProbeFilter},
            "sockets": {"()": SocketFilter},
        },
        "formatters": {"tocsin": {"()": formatter, "redactor": redactor}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "tocsin",
                "filters": ["context"],
            }
        },
        "loggers": {
            "tocsin": {"level": numeric},
            "uvicorn": {"level": numeric, "handlers": [], "propagate": True},
            "uvicorn.error": {
                "level": numeric,
                "handlers": [],
                "propagate": True,
                "filters": ["sockets"],
            },
            "uvicorn.access": {
                "level": numeric,
                "handlers": [],
                "propagate": True,
                "filters": ["probes"],
            },
        },
        "root": {"level": logging.WARNING, "handlers": ["stderr"]},
    }


def configure(settings: LogSettings, secrets: Iterable[str] = ()) -> None:
    """Configure this process's logging; `secrets` are values never to print."""
    logging.addLevelName(TRACE, "TRACE")
    logging.config.dictConfig(config(settings.level, settings.format, secrets))
