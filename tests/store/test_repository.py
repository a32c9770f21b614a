"""Repository queries against the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.models import NewNotification
from shared.repository import Repository


def note(title: str, **extra: object) -> NewNotification:
    return NewNotification("message:received", title, "", **extra)  # type: ignore[arg-type]


async def test_many_recipients_each_get_their_own_contiguous_seq(repo: Repository) -> None:
    await repo.insert(note("a"), ["u1"])
    stored = await repo.insert(note("b"), ["u2", "u1", "u3", "u1"])
    assert [(s.notification.user_id, s.notification.seq) for s in stored] == [
        ("u2", 1), ("u1", 2), ("u3", 1),
    ]  # fmt: skip
    assert await repo.latest_seq("u1") == 2


async def test_idempotent_replay_returns_the_same_row_and_burns_no_seq(repo: Repository) -> None:
    first = await repo.insert(note("a", idempotency_key="k"), ["u1", "u2"])
    again = await repo.insert(note("a", idempotency_key="k"), ["u1", "u2", "u3"])
    assert [s.created for s in again] == [False, False, True]
    assert [s.notification.id for s in again[:2]] == [s.notification.id for s in first]
    nxt = await repo.insert(note("b"), ["u1"])
    assert nxt[0].notification.seq == 2


async def test_resume_point_is_before_the_first_undelivered(repo: Repository) -> None:
    assert await repo.resume_point("nobody") == (0, 0)
    for i in range(5):
        await repo.insert(note(str(i)), ["u"])
    assert await repo.resume_point("u") == (0, 5)
    assert await repo.mark_delivered([("u", 3), ("other", 9)]) == 3
    assert await repo.resume_point("u") == (3, 5)
    await repo.mark_delivered([("u", 5)])
    assert await repo.resume_point("u") == (5, 5)


async def test_counts_exclude_archived_and_expired(repo: Repository) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    future = datetime.now(UTC) + timedelta(hours=1)
    await repo.insert(note("live"), ["u"])
    await repo.insert(note("soon gone", expires_at=future), ["u"])
    [expired] = await repo.insert(note("gone", expires_at=past), ["u"])
    [archived] = await repo.insert(note("archived"), ["u"])
    await repo.archive("u", archived.notification.id)
    counts = await repo.counts("u")
    assert (counts.unread, counts.unseen) == (2, 2)
    page = await repo.feed("u", before_seq=None, limit=10)
    assert [n.seq for n in page.notifications] == [2, 1]
    backlog = await repo.backlog("u", 0, 10)
    assert [n.seq for n in backlog] == [1, 2, 3, 4]  # the cursor must step over every seq
    assert not backlog[2].deliverable(datetime.now(UTC))
    assert expired.notification.expires_at == past


async def test_read_all_up_to_and_seen(repo: Repository) -> None:
    for i in range(4):
        await repo.insert(note(str(i)), ["u"])
    assert await repo.mark_all_seen("u", up_to_seq=1) == 1
    assert await repo.mark_all_read("u", up_to_seq=3) == 3
    assert await repo.mark_all_read("u") == 1
    counts = await repo.counts("u")
    assert (counts.unread, counts.unseen) == (0, 0)


async def test_changes_never_cross_users(repo: Repository) -> None:
    [mine] = await repo.insert(note("mine"), ["alice"])
    ident = mine.notification.id
    assert await repo.mark_read("bob", ident) is None
    assert await repo.archive("bob", ident) is None
    assert await repo.get("bob", ident) is None
    assert await repo.mark_read("alice", "not-a-uuid") is None
    assert (await repo.counts("alice")).unread == 1


async def test_a_sends_new_rows_are_what_the_store_reads_back(repo: Repository) -> None:
    new = NewNotification(
        "task:assigned", "t", "b", "https://example.com/a", {"k": [1, "x"]},
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    for users in (["r1", "r2"], [f"r{i}" for i in range(60)]):  # shared, then alone
        for s in await repo.insert(new, users):
            assert s.created
            stored = await repo.get(s.notification.user_id, s.notification.id)
            assert stored == s.notification
