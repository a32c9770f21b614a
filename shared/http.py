"""JSON responses (orjson) and the one error shape both HTTP APIs answer with."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from shared import serialization


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return serialization.dumps(content)


def error_response(
    status: int, code: str, message: str, *, field: str | None = None, **extra: Any
) -> JSONResponse:
    """`{"error": {"code", "message", "field"?...}}` with the given HTTP status."""
    error: dict[str, Any] = {"code": code, "message": message, **extra}
    if field is not None:
        error["field"] = field
    return JSONResponse({"error": error}, status_code=status)
