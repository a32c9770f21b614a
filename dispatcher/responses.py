"""JSON answers (encoded with orjson) and the one error shape every route uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse

from shared import metrics, serialization


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return serialization.dumps(content)


def error(
    status: int,
    code: str,
    message: str,
    *,
    fields: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSON:
    """`{"error": {"code", "message", "fields"?}}` with the given status."""
    detail: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        detail["fields"] = list(fields)
    return JSON({"error": detail}, status_code=status, headers=headers)


def reject(
    status: int,
    code: str,
    message: str,
    *,
    fields: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSON:
    """An error answer to a producer request, counted by status."""
    metrics.REQUESTS_REJECTED.labels(status=str(status)).inc()
    return error(status, code, message, fields=fields, headers=headers)
