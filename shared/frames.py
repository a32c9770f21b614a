"""Frames that travel through a user's Redis channel to every socket of that user.

Each is encoded once, by whoever made the change; gateways forward the bytes unchanged.
See docs/protocol.md for every frame.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared import serialization
from shared.models import Counts, Notification

PROTOCOL_VERSION = 1

NEW = "notification:new"
BATCH = "notifications:batch"
READ = "notification:read"
UNREAD = "notification:unread"
ARCHIVED = "notification:archived"
READ_ALL = "notifications:read-all"
SEEN_ALL = "notifications:seen"
UNREAD_COUNT = "unread-count"

STATE_EVENTS = (READ, UNREAD, ARCHIVED, READ_ALL, SEEN_ALL)


def new_notification(notification: Notification) -> bytes:
    return serialization.dumps(
        {"type": NEW, "seq": notification.seq, "notification": notification.to_wire()}
    )


def batch(notifications: list[Notification], more: bool) -> bytes:
    return serialization.dumps(
        {"type": BATCH, "notifications": [n.to_wire() for n in notifications], "more": more}
    )


def state_change(
    event: str,
    counts: Counts,
    *,
    ids: list[str] | None = None,
    up_to_seq: int | None = None,
    at: datetime | None = None,
) -> bytes:
    """A read-state change and the user's counts right after it."""
    assert event in STATE_EVENTS
    frame: dict[str, Any] = {"type": event, **counts.to_wire()}
    if ids is not None:
        frame["ids"] = ids
    if up_to_seq is not None:
        frame["upToSeq"] = up_to_seq
    if at is not None:
        frame["at"] = at
    return serialization.dumps(frame)


def unread_count(counts: Counts) -> bytes:
    return serialization.dumps({"type": UNREAD_COUNT, **counts.to_wire()})
