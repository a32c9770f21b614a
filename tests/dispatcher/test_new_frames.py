"""frames.NewFrames: the bytes of new_notification for every row of a run, whatever the rows
share or hold (the template is only a shortcut)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared import frames
from shared.models import Notification

NOW = datetime(2026, 11, 30, 21, 0, 0, 123_456, tzinfo=UTC)


def row(seq: int, **changes: object) -> Notification:
    base = Notification(
        id=f"00000000-0000-4000-8000-{seq:012d}",
        user_id=f"u{seq}",
        seq=seq,
        type="message:received",
        title='Hello \u00e9\u2603 "quoted" \\ {braces}',
        body="",
        action_url=None,
        data={"k": [1, 2.5, None, "x"], "nested": {"a": True}},
        created_at=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_every_frame_is_the_one_new_notification_makes() -> None:
    shared = {"order": 7}
    sentinel_text = frames._T_ID + str(frames._T_SEQ) + frames._T_CREATED.isoformat()
    rows = [
        *(row(i, data=shared) for i in range(1, 6)),  # one bulk send: one template
        row(6, data=shared, created_at=NOW + timedelta(microseconds=1)),
        row(7, title="another", data=shared),
        row(10**15, expires_at=NOW + timedelta(days=1), read_at=NOW, seen_at=NOW),
        row(9, archived_at=NOW, action_url="https://example.com/x?y=1"),
        row(10, body=sentinel_text),  # the template would be ambiguous: encoded alone
        row(11, data={"seq": frames._T_SEQ}),
        row(12, id=frames._T_ID),
        row(13, data=shared),
    ]
    encoder = frames.NewFrames()
    for note in rows:
        assert encoder.encode(note) == frames.new_notification(note), note


def test_an_unencodable_row_raises_as_alone_and_the_next_is_fine() -> None:
    encoder = frames.NewFrames()
    bad = row(1, data={"n": 2**70})  # past orjson's integers
    with pytest.raises(TypeError) as alone:
        frames.new_notification(bad)
    with pytest.raises(alone.type):
        encoder.encode(bad)
    good = row(2)
    assert encoder.encode(good) == frames.new_notification(good)
