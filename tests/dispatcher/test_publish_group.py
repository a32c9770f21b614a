"""dispatcher.routes.PublishGroup: requests finishing together share one publish call, and
each learns how many of its own notifications went out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from dispatcher.routes import GROUP_MAX, PublishGroup
from shared.models import Notification

TIMEOUT = 10


def notes(user: str, count: int) -> list[Notification]:
    now = datetime.now(UTC)
    return [
        Notification(f"{user}-{i}", user, i + 1, "system:alert", "t", "", None, {}, now)
        for i in range(count)
    ]


class FakePublisher:
    """Publishes the first `budget` notifications it is given, then reports the rest lost."""

    def __init__(self, budget: int = 10**9, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.budget = budget
        self.fail = fail
        self.gate = asyncio.Event()
        self.gate.set()

    async def publish(self, notifications: Sequence[Notification]) -> int:
        self.calls.append([n.id for n in notifications])
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("bug")
        went = min(self.budget, len(notifications))
        self.budget -= went
        return went


def group(publisher: FakePublisher) -> PublishGroup:
    return PublishGroup(publisher)  # type: ignore[arg-type]


async def test_requests_finishing_together_share_one_publish() -> None:
    publisher = FakePublisher()
    g = group(publisher)
    async with asyncio.timeout(TIMEOUT):
        counts = await asyncio.gather(*(g.publish(notes(f"u{i}", 2)) for i in range(5)))
    assert counts == [2] * 5
    assert publisher.calls == [[f"u{i}-{j}" for i in range(5) for j in range(2)]]


async def test_a_partial_publish_is_split_by_position() -> None:
    publisher = FakePublisher(budget=5)
    g = group(publisher)
    async with asyncio.timeout(TIMEOUT):
        counts = await asyncio.gather(g.publish(notes("a", 3)), g.publish(notes("b", 3)),
                                      g.publish(notes("c", 3)))  # fmt: skip
    assert counts == [3, 2, 0]


async def test_requests_arriving_during_a_publish_form_the_next_group() -> None:
    publisher = FakePublisher()
    publisher.gate.clear()
    g = group(publisher)
    async with asyncio.timeout(TIMEOUT):
        first = asyncio.create_task(g.publish(notes("a", 1)))
        await asyncio.sleep(0.01)
        later = [asyncio.create_task(g.publish(notes(u, 1))) for u in "bc"]
        await asyncio.sleep(0.01)
        assert publisher.calls == [["a-0"]]  # one publish in flight at most
        publisher.gate.set()
        assert await asyncio.gather(first, *later) == [1, 1, 1]
    assert publisher.calls == [["a-0"], ["b-0", "c-0"]]


async def test_a_large_publish_goes_alone_and_empty_ones_cost_nothing() -> None:
    publisher = FakePublisher()
    g = group(publisher)
    async with asyncio.timeout(TIMEOUT):
        assert await g.publish([]) == 0
        assert await g.publish(notes("big", GROUP_MAX + 1)) == GROUP_MAX + 1
    assert [len(c) for c in publisher.calls] == [GROUP_MAX + 1]


async def test_an_unexpected_error_reaches_every_request_of_the_group() -> None:
    g = group(FakePublisher(fail=True))
    async with asyncio.timeout(TIMEOUT):
        results: list[Any] = await asyncio.gather(
            *(g.publish(notes(u, 1)) for u in "ab"), return_exceptions=True
        )
    assert [str(r) for r in results] == ["bug", "bug"]
