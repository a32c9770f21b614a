"""What travels on a user's pub/sub channel: a short routing line, then the frame's bytes.

The gateway routes on the line (kind, seq, commit time) and forwards the frame untouched:
no JSON is decoded per message on the node (issue 9). The line is ASCII:

    n <seq> <created_ms>\\n<notification:new frame>
    e\\n<any other frame (read-state events)>
"""

from __future__ import annotations

from typing import NamedTuple

NOTIFICATION = b"n"
EVENT = b"e"


class Envelope(NamedTuple):
    seq: int  # 0 for an event
    created: float | None  # commit time, epoch seconds (notifications only)
    frame: bytes  # the JSON frame, exactly as the sockets get it


class EnvelopeError(ValueError):
    """The bytes are not an envelope (written by something that is not Tocsin)."""


def notification(seq: int, created_ms: int, frame: bytes) -> bytes:
    return b"n %d %d\n%b" % (seq, created_ms, frame)


def event(frame: bytes) -> bytes:
    return b"e\n" + frame


def parse(data: bytes) -> Envelope:
    head, newline, frame = data.partition(b"\n")
    if not newline or not frame:
        raise EnvelopeError("no routing line")
    if head == EVENT:
        return Envelope(0, None, frame)
    parts = head.split(b" ")
    if len(parts) != 3 or parts[0] != NOTIFICATION:
        raise EnvelopeError(f"unknown routing line {head[:40]!r}")
    try:
        seq, created_ms = int(parts[1]), int(parts[2])
    except ValueError:
        raise EnvelopeError(f"bad routing line {head[:40]!r}") from None
    if seq < 1:
        raise EnvelopeError(f"bad seq {seq}")
    return Envelope(seq, created_ms / 1000, frame)
