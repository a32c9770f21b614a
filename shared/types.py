"""Notification types: the six built in, and the pattern any producer type must match."""

from __future__ import annotations

import re

BUILTIN_TYPES: tuple[str, ...] = (
    "order:status_changed",
    "message:received",
    "mention:comment",
    "task:assigned",
    "payment:processed",
    "system:alert",
)

# namespace:event, lower-case, e.g. "invoice:overdue" or "build:failed.retry".
TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_.-]{0,62}$")
TYPE_MAX_LENGTH = 96


def is_valid_type(value: str) -> bool:
    # fullmatch: `$` in a pattern also matches before a trailing newline.
    return len(value) <= TYPE_MAX_LENGTH and TYPE_PATTERN.fullmatch(value) is not None
