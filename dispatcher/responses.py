"""Producer-API rejections: the shared error shape, counted by status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dispatcher import metrics
from shared.http import JSONResponse, error_response


def reject(
    status: int,
    code: str,
    message: str,
    *,
    fields: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error answer to a producer request, counted by status."""
    metrics.rejected(status)
    return error_response(status, code, message, fields=fields, headers=headers)
