"""Shared by the HTTP-edge and logging tests: the one error shape, and JSON log lines."""

from __future__ import annotations

import json
from typing import Any

import httpx

LOG_FIELDS = {"time", "level", "logger", "message"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is `{"error": {"code", "message", ...}}` JSON with that status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "field", "fields"}
    return dict(error)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line of a log, parsed; fails on any line that is not a JSON object
    with the four fixed fields."""
    lines = []
    for line in text.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert set(record) >= LOG_FIELDS, line
        lines.append(record)
    return lines
