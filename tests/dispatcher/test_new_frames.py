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
    sentinels = {"seq": frames._T_SEQ}
    sentinel_text = frames._T_ID + str(frames._T_SEQ) + frames._T_CREATED.isoformat()
    later = NOW + timedelta(microseconds=1)
    runs = [
        [row(i, data=shared) for i in range(1, 6)],  # one bulk send: one template
        [row(6, data=shared, created_at=later), row(7, data=shared, created_at=later)],
        [row(8, title="another", data=shared), row(9, title="another", data=shared)],
        [
            row(10**15, data=shared, expires_at=NOW, read_at=NOW, seen_at=NOW),
            row(10**15 + 1, data=shared, expires_at=NOW, read_at=NOW, seen_at=NOW),
        ],
        [row(i, data=shared, archived_at=NOW, action_url="https://e.com/?y=1") for i in (1, 2)],
        # The cut would be ambiguous: each row is encoded whole.
        [row(i, data=shared, body=sentinel_text) for i in (11, 12, 13)],
        [row(i, data=sentinels) for i in (14, 15)],
        [row(i, data=shared, id=frames._T_ID) for i in (16, 17)],
        [row(18), row(19), row(20)],  # a data object each: every row alone
    ]
    encoder = frames.NewFrames()
    for run in runs:
        for note in run:
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
