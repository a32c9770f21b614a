"""orjson in and out; every decoding failure is one error type."""

from __future__ import annotations

from typing import Any

import orjson


class SerializationError(ValueError):
    """The bytes are not valid JSON."""


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"invalid JSON: {exc}") from None
