"""Frames that travel through a user's Redis channel to every socket of that user.

Each is encoded once, by whoever made the change; gateways forward the bytes unchanged.
See docs/protocol.md for every frame.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
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


class NewFrames:
    """new_notification for many notifications, the same bytes, cheaper: the rows of one send
    share every field but id, seq and createdAt (the same `data` object), so from the second
    row of a run sharing them on, a frame is a template encoded once for the run, filled in
    (a 10,000-user send encodes two frames whole, not 10,000). A row alone costs what it did."""

    def __init__(self) -> None:
        self._data: object = None
        self._shared: tuple[Any, ...] | None = None
        self._parts: tuple[bytes, bytes, bytes, bytes, bytes] | None = None
        self._cut = False  # _parts made for this run (None: the cut was ambiguous)
        self._created: tuple[datetime | None, bytes] = (None, b"")

    def encode(self, notification: Notification) -> bytes:
        n = notification
        shared: tuple[Any, ...] = (n.type, n.title, n.body, n.action_url, n.expires_at)
        shared += (n.seen_at, n.read_at, n.archived_at)
        if n.data is not self._data or shared != self._shared:
            # The first of a run is encoded alone: a template pays from the second row on.
            frame = new_notification(n)
            self._data, self._shared, self._parts, self._cut = n.data, shared, None, False
            return frame
        if not self._cut:
            self._parts, self._cut = _template(n), True
        parts = self._parts
        if parts is None:
            return new_notification(n)
        if self._created[0] != n.created_at:
            self._created = (n.created_at, serialization.dumps(n.created_at))
        head, after_seq, after_id, after_seq2, tail = parts
        ident = serialization.dumps(n.id)
        return b"%b%d%b%b%b%d%b%b%b" % (
            head,
            n.seq,
            after_seq,
            ident,
            after_id,
            n.seq,
            after_seq2,
            self._created[1],
            tail,
        )


# Values no real row holds; a template is used only when each appears where expected alone.
_T_ID = "7e3a1f5c-0000-4000-8000-9b2d7e3a1f5c"
_T_SEQ = 8_070_450_532_247_928_807
_T_CREATED = datetime(1971, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC)


def _template(n: Notification) -> tuple[bytes, bytes, bytes, bytes, bytes] | None:
    """new_notification's bytes for `n` cut around seq, id, seq and createdAt; None when
    the cut is ambiguous (a sentinel's text also sits in the shared fields)."""
    encoded = new_notification(replace(n, id=_T_ID, seq=_T_SEQ, created_at=_T_CREATED))
    seq, ident = b"%d" % _T_SEQ, serialization.dumps(_T_ID)
    created = serialization.dumps(_T_CREATED)
    if encoded.count(seq) != 2 or encoded.count(ident) != 1 or encoded.count(created) != 1:
        return None
    head, _, rest = encoded.partition(seq)
    after_seq, _, rest = rest.partition(ident)
    after_id, _, rest = rest.partition(seq)
    after_seq2, _, tail = rest.partition(created)
    if not tail:
        return None  # not in the order expected
    return head, after_seq, after_id, after_seq2, tail


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
