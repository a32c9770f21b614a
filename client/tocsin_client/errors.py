"""Errors raised by the client; each carries the server's message (and status when it answered)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class TocsinError(Exception):
    """Any failure to send; `status` and `code` are the server's when it answered."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        prefix = f"{self.status} {self.code}: " if self.status is not None else ""
        return f"{prefix}{self.message}"


class ValidationError(TocsinError):
    """422: the request named bad fields; `fields` lists each one."""

    def __init__(self, message: str, fields: list[FieldError], *, status: int = 422) -> None:
        super().__init__(message, status=status, code="validation_error")
        self.fields = fields


class AuthenticationError(TocsinError):
    """401/403: the producer key is missing or not accepted."""


class PayloadTooLarge(TocsinError):
    """413: the request body is over the server's limit."""


class ServiceUnavailable(TocsinError):
    """502/503/504 after every retry: nothing was stored by the last attempt."""


class TransportError(TocsinError):
    """The server could not be reached or did not answer, after every retry."""
