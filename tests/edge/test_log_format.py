"""The log formatters and filters on their own: fields, ids, exceptions, redaction, probes."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator

import pytest

from shared import logs

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def isolated() -> Iterator[tuple[logging.Logger, Collect]]:
    """A private logger (the test process's own logging stays as pytest set it)."""
    logger = logging.getLogger(f"edge-test.{uuid.uuid4().hex}")
    handler = Collect()
    handler.addFilter(logs.ContextFilter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, handler
    logger.removeHandler(handler)


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = sys.exc_info() if exc else None
    return logging.LogRecord("tocsin.test", logging.WARNING, __file__, 1, message, args, exc_info)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("connect postgresql://tocsin:s3cret-pw@db:5432/tocsin failed", "s3cret-pw"),
        ("redis rediss://:r3dis-pw@cache:6380/0 down", "r3dis-pw"),
        ("header Authorization: Bearer tsk_abcdefgh12345678", "tsk_abcdefgh12345678"),
        (f"hello with {JWT}", JWT.split(".")[1]),
        ('"GET /v1/ws?x=1&token=abc.def.ghi HTTP/1.1" 401', "abc.def.ghi"),
        ("POST /v1/notifications?api_key=k-123456789 401", "k-123456789"),
    ],
)
def test_the_redaction_net_hides_credentials(line: str, secret: str) -> None:
    cleaned = logs.redact(line)
    assert secret not in cleaned and "***" in cleaned


def _every_pattern(text: str) -> str:
    """The redaction net without its shortcut: every pattern scans every line."""
    for pattern, replacement, _ in logs._PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1:54321 - "POST /v1/notifications HTTP/1.1" 201',
        "connect POSTGRESQL://u:PW@db/x and BEARER ABCDEFGH and Basic dXNlcjpwdw==",
        f"mixed {JWT} ?TOKEN=no &token=yes Authorization:bearer\tx1",
        "the long s: Ba\u017fic c2VjcmV0 and Kelvin \u212aEY https://u:p@h",  # past ASCII
        "no secrets: a=b, c://d, eyJ, bearer",
        "",
    ],
)
def test_the_shortcut_redacts_as_every_pattern_would(line: str) -> None:
    assert logs.redact(line) == _every_pattern(line)


def test_known_secrets_are_hidden_and_ordinary_text_is_kept() -> None:
    redact = logs.Redactor(["my-producer-key-0001", "short"])
    assert redact("key my-producer-key-0001 refused") == "key *** refused"
    assert redact("postgresql://postgres@127.0.0.1/db short") == (
        "postgresql://postgres@127.0.0.1/db short"
    )


def test_json_line_has_the_fields_ids_and_exception() -> None:
    formatter = logs.JsonFormatter(logs.Redactor(["the-jwt-secret-value"]))
    request, connection = logs.REQUEST_ID.set("req-1"), logs.CONNECTION_ID.set("gw/7")
    try:
        try:
            raise ValueError("boom with the-jwt-secret-value")
        except ValueError:
            rec = record("failed for %s", "user 42", exc=True)
        logs.ContextFilter().filter(rec)
    finally:
        logs.REQUEST_ID.reset(request)
        logs.CONNECTION_ID.reset(connection)
    line = json.loads(formatter.format(rec))
    assert set(line) == {"time", "level", "logger", "message", "request_id", "connection_id", "exc"}
    assert line["time"].endswith("Z") and line["time"][10] == "T"
    assert (line["level"], line["logger"]) == ("warning", "tocsin.test")
    assert line["message"] == "failed for user 42"
    assert (line["request_id"], line["connection_id"]) == ("req-1", "gw/7")
    assert "ValueError: boom with ***" in line["exc"]


def test_text_line_is_readable_and_names_the_ids() -> None:
    rec = record("origin %r refused", "http://evil.example")
    rec.request_id, rec.connection_id = "req-9", None
    text = logs.TextFormatter().format(rec)
    assert text.endswith(
        " WARNING tocsin.test: origin 'http://evil.example' refused [request_id=req-9]"
    )


def access(logger: logging.Logger, path: str) -> None:
    logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", path, "1.1", 200)


def test_probe_access_lines_are_debug(isolated: tuple[logging.Logger, Collect]) -> None:
    logger, handler = isolated
    logger.addFilter(logs.ProbeFilter())
    for path in ("/healthz", "/readyz?full=1", "/metrics", "/v1/notifications"):
        access(logger, path)
    assert [r.getMessage().split('"')[1] for r in handler.records] == [
        "GET /v1/notifications HTTP/1.1"
    ]
    logger.setLevel(logging.DEBUG)
    access(logger, "/healthz")
    assert handler.records[-1].levelname == "DEBUG"


def test_auto_format_follows_the_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.resolve_format("auto", Terminal()) == "text"
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("json", Terminal()) == "json"
