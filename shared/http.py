"""JSON responses (orjson) and the one error shape both HTTP APIs answer with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse as _StarletteJSON

from shared import serialization


class JSONResponse(_StarletteJSON):
    def render(self, content: Any) -> bytes:
        return serialization.dumps(content)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    fields: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """`{"error": {"code", "message", "field"? , "fields"?}}` with the given HTTP status."""
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    if fields is not None:
        detail["fields"] = list(fields)
    return JSONResponse({"error": detail}, status_code=status, headers=headers)
