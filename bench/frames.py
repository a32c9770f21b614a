"""The frames every system under test sends: Tocsin's own `notification:new` encoding, made
once from a template and filled per message (ids, seqs and times change; the bytes do not).

A template is the real encoder's output for a notification holding sentinel values; filling
it replaces each sentinel's text, so whatever layout the encoder uses, the bench sends it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from shared import frames
from shared.models import Notification

SENTINEL_USER = "bench-sentinel-user-7c1f"
SENTINEL_ID = "b0b0b0b0-0000-4000-8000-00000000abcd"
SENTINEL_SEQ = 918_273_645_546_372
SENTINEL_T = 1_234_567_890.125  # the sender's clock, in data.t: latency = arrival - t
SENTINEL_CREATED = datetime(2001, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC)

TYPE = "message:received"
TITLE = "New message from Ana"
BODY = "Are you free at 3?"


def sentinel_notification() -> Notification:
    return Notification(
        id=SENTINEL_ID,
        user_id=SENTINEL_USER,
        seq=SENTINEL_SEQ,
        type=TYPE,
        title=TITLE,
        body=BODY,
        action_url=None,
        data={"t": SENTINEL_T},
        created_at=SENTINEL_CREATED,
    )


class Template:
    """Encoded bytes with sentinels, filled per message by plain byte replacement."""

    def __init__(self, encoded: bytes) -> None:
        self.encoded = encoded
        self._id_prefix = uuid.uuid4().hex[:20]
        self._count = 0
        for sentinel in (_b(SENTINEL_SEQ), _b(SENTINEL_T), SENTINEL_ID.encode()):
            if sentinel not in encoded:
                raise ValueError(f"template lost the sentinel {sentinel!r}: {encoded[:200]!r}")

    def fill(self, user_id: str, seq: int, t: float, created: bytes) -> bytes:
        self._count += 1
        h = f"{self._id_prefix}{self._count:012x}"
        ident = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode()
        return (
            self.encoded.replace(_b(SENTINEL_SEQ), str(seq).encode())
            .replace(_b(SENTINEL_T), orjson.dumps(t))
            .replace(SENTINEL_ID.encode(), ident)
            .replace(_CREATED, created)
            .replace(SENTINEL_USER.encode(), user_id.encode())
        )


_CREATED = SENTINEL_CREATED.isoformat().encode()


def _b(value: int | float) -> bytes:
    return orjson.dumps(value)


def created_text(now: float) -> bytes:
    """createdAt as the encoder writes it."""
    return datetime.fromtimestamp(now, UTC).isoformat().encode()


def browser_template() -> Template:
    """The `notification:new` frame a browser receives (what the limit and floor send)."""
    return Template(frames.new_notification(sentinel_notification()))
