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


class Unreadable:
    """A stored JSON value this process cannot decode (e.g. a number past float range)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def loads_stored(data: bytes | str) -> Any:
    """Decode a value from the store; never raises, so one bad row cannot fail a whole query."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Unreadable(str(exc))
