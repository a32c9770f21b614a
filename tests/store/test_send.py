"""A send is one call of tocsin_send (migration 0005): seqs, idempotency keys and fallback jobs,
against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import asyncpg
import pytest

from shared import preferences_store, profiles_store
from shared.fallback_jobs import FallbackRequest
from shared.fallback_rules import EMAIL, PUSH, PlannedJob
from shared.models import NewNotification
from shared.preferences import Preferences, PushSubscription
from shared.repository import Repository

KIND = "message:received"
BOTH = FallbackRequest((PlannedJob(PUSH, 30.0, True), PlannedJob(EMAIL, 600.0, True)))
OFF_BY_DEFAULT = FallbackRequest((PlannedJob(PUSH, 30.0, False), PlannedJob(EMAIL, 600.0, False)))


def user() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def note(title: str = "t", key: str | None = None, kind: str = KIND) -> NewNotification:
    return NewNotification(kind, title, "", idempotency_key=key)


async def jobs_of(pool: asyncpg.Pool, *users: str) -> set[tuple[str, str, str | None]]:
    rows = await pool.fetch(
        "SELECT user_id, channel, email FROM tocsin_fallback_jobs WHERE user_id = ANY($1)",
        list(users),
    )
    return {(r["user_id"], r["channel"], r["email"]) for r in rows}


async def test_overlapping_concurrent_sends_keep_every_users_seqs_contiguous(
    repo: Repository,
) -> None:
    users = [user() for _ in range(6)]
    groups = [users[i : i + 3] for i in range(4)] * 5  # overlapping, in different orders
    groups += [list(reversed(g)) for g in groups]
    await asyncio.gather(*(repo.insert(note(str(i)), g) for i, g in enumerate(groups)))
    for u in users:
        seqs = [n.seq for n in await repo.backlog(u, 0, 1000)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert await repo.latest_seq(u) == len(seqs) > 0


async def test_concurrent_sends_with_one_key_store_one_row_each_and_burn_no_seq(
    repo: Repository,
) -> None:
    a, b = user(), user()
    results = await asyncio.gather(*(repo.insert(note(key="k1"), [a, b]) for _ in range(12)))
    created = [s for stored in results for s in stored if s.created]
    assert sorted(s.notification.user_id for s in created) == sorted([a, b])
    ids = {s.notification.user_id: s.notification.id for s in created}
    for stored in results:  # every caller got the one row of each user
        assert {s.notification.user_id: s.notification.id for s in stored} == ids
    [after] = await repo.insert(note(), [a])
    assert after.notification.seq == 2


async def test_jobs_need_an_address_or_a_subscription(repo: Repository) -> None:
    nothing, mailed, pushed = user(), user(), user()
    await profiles_store.put(repo.pool, mailed, profiles_store.Profile(email="m@example.com"))
    subscription = PushSubscription("https://push.example/" + pushed, "p" * 87, "a" * 22)
    await preferences_store.add_push_subscription(repo.pool, pushed, subscription)
    await repo.insert(note(), [nothing, mailed, pushed], BOTH)
    assert await jobs_of(repo.pool, nothing, mailed, pushed) == {
        (mailed, EMAIL, None),
        (pushed, PUSH, None),
    }
    given = FallbackRequest(BOTH.jobs, "given@example.com")  # the send names an address
    await repo.insert(note(), [nothing], given)
    assert await jobs_of(repo.pool, nothing) == {(nothing, EMAIL, "given@example.com")}


async def test_jobs_follow_preferences_and_skip_replays(repo: Repository) -> None:
    off, on, default = user(), user(), user()
    address = FallbackRequest(BOTH.jobs, "x@example.com")
    await preferences_store.put(
        repo.pool, off, Preferences.from_wire({"channels": {"email": {KIND: False}}})
    )
    await preferences_store.put(
        repo.pool, on, Preferences.from_wire({"channels": {"email": {"*": True}}})
    )
    await repo.insert(note(key="k"), [off, on, default], address)
    assert await jobs_of(repo.pool, off, on, default) == {
        (on, EMAIL, "x@example.com"),
        (default, EMAIL, "x@example.com"),
    }
    await repo.insert(note(key="k"), [off, on, default], address)  # replays: no new jobs
    await repo.insert(note(), [off, on, default], FallbackRequest(OFF_BY_DEFAULT.jobs, "x@e.io"))
    count = await repo.pool.fetchval(
        "SELECT count(*) FROM tocsin_fallback_jobs WHERE user_id = ANY($1)", [off, on, default]
    )
    assert count == 3  # the off-by-default send made one job: the user who turned email on


# Stored preferences, valid and not: the SQL rule must read each as from_stored does (a row
# that is not valid preferences reads as the defaults). Not covered: a time zone one side
# knows and the other does not (PostgreSQL and Python ship their own tz databases).
_VALID = [
    {},
    {"channels": {}},
    {"channels": {"email": {KIND: False}}},
    {"channels": {"email": {"*": False, KIND: True}, "push": {"*": True}}},
    {"channels": {"push": {"*": False}}, "quietHours": None},
    {
        "channels": {"push": {"order:status_changed": False}},
        "quietHours": {"start": "22:00", "end": "07:00", "timeZone": "Europe/Paris"},
    },
]
_BROKEN: list[Any] = [
    [],
    "text",
    7,
    {"channels": {"email": {KIND: False}}, "extra": 1},
    {"channels": None},
    {"channels": []},
    {"channels": {"sms": {"*": False}}, "quietHours": None},
    {"channels": {"email": []}},
    {"channels": {"email": {KIND: 0}}},
    {"channels": {"email": {KIND: "false"}}},
    {"channels": {"email": {"Not A Type": False, "*": False}}},
    {"channels": {"email": {f"t:k{i}": False for i in range(101)} | {"*": False}}},
    {"channels": {"email": {"*": False}}, "quietHours": "22:00"},
    {"channels": {"email": {"*": False}}, "quietHours": {"start": "22:00", "end": "7:00"}},
    {"channels": {"email": {"*": False}}, "quietHours": {"start": "22:00", "end": "22:00"}},
    {
        "channels": {"email": {"*": False}},
        "quietHours": {"start": "24:00", "end": "07:00", "timeZone": "UTC"},
    },
    {
        "channels": {"email": {"*": False}},
        "quietHours": {"start": "22:00", "end": "07:00", "timeZone": "UTC", "x": 1},
    },
    {
        "channels": {"email": {"*": False}},
        "quietHours": {"start": "22:00", "end": "07:00", "timeZone": "U" * 65},
    },
    {"channels": {"email": {"*": False}}, "quietHours": {"start": "22:00", "end": "07:00"}},
]


@pytest.mark.parametrize("stored", [None, *_VALID, *_BROKEN])
async def test_the_sql_preference_rule_is_the_python_one(pool: asyncpg.Pool, stored: Any) -> None:
    prefs = preferences_store.from_stored(stored)
    cases = list(
        itertools.product(("push", "email"), (KIND, "order:status_changed"), (True, False))
    )
    found = await pool.fetch(
        "SELECT c.channel, c.kind, c.default_on,"
        " tocsin_fallback_allowed($1::jsonb, c.channel, c.kind, c.default_on) AS allowed"
        " FROM unnest($2::text[], $3::text[], $4::boolean[]) AS c(channel, kind, default_on)",
        stored,
        [c[0] for c in cases],
        [c[1] for c in cases],
        [c[2] for c in cases],
    )
    assert len(found) == len(cases)
    for row in found:
        expected = prefs.allows(row["channel"], row["kind"], row["default_on"])
        assert row["allowed"] is expected, (stored, dict(row))


# -- group commit: small sends made at the same moment share a transaction ----------------


async def test_concurrent_small_sends_share_transactions_and_each_gets_its_rows(
    repo: Repository,
) -> None:
    users = [user() for _ in range(8)]
    sends = [(note(f"t{i}"), [users[i % 8], users[(i * 3) % 8], users[i % 8]]) for i in range(60)]
    keyed = [(note("keyed", key="same"), [users[0], users[1]]) for _ in range(6)]
    results = await asyncio.gather(*(repo.insert(n, who, BOTH) for n, who in sends + keyed))
    for (new, who), stored in zip(sends + keyed, results, strict=True):
        assert [s.notification.user_id for s in stored] == list(dict.fromkeys(who))
        assert {s.notification.title for s in stored} == {new.title}
    created_keyed = [s for stored in results[60:] for s in stored if s.created]
    assert sorted(s.notification.user_id for s in created_keyed) == sorted(users[:2])
    for u in users:
        seqs = [n.seq for n in await repo.backlog(u, 0, 1000)]
        assert seqs == list(range(1, len(seqs) + 1))
    rows = await repo.pool.fetch(
        "SELECT title, user_id, seq, xmin::text AS tx FROM tocsin_notifications"
        " WHERE user_id = ANY($1)",
        users,
    )
    assert len({r["tx"] for r in rows}) < len(sends)  # fewer transactions than sends
    stored_by_row = {(s.notification.user_id, s.notification.seq): s for r in results for s in r}
    assert {(r["user_id"], r["seq"]): r["title"] for r in rows} == {
        key: s.notification.title for key, s in stored_by_row.items()
    }


async def test_a_send_the_store_refuses_fails_alone(repo: Repository) -> None:
    good = [user() for _ in range(5)]
    bad = NewNotification(KIND, "bad \x00 title", "")  # validation stops this before the store
    results = await asyncio.gather(
        *(repo.insert(note(f"g{i}"), [u]) for i, u in enumerate(good)),
        repo.insert(bad, [good[0]]),
        return_exceptions=True,
    )
    assert isinstance(results[-1], asyncpg.PostgresError)
    assert all(isinstance(r, list) and r[0].created for r in results[:-1])
    assert [await repo.latest_seq(u) for u in good] == [1] * 5  # and no seq burned


async def test_a_store_outage_fails_every_send_of_the_transaction(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    repo = Repository(pool)
    await pool.close()
    results = await asyncio.gather(
        *(repo.insert(note(), [user()]) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(r, asyncpg.InterfaceError) for r in results)
