"""Web push through a loopback push service that verifies the VAPID JWT and decrypts the
aes128gcm payload: an offline user gets it, an online user who acked does not, 410 removes
the subscription."""

from __future__ import annotations

import asyncio

import asyncpg

from dispatcher.fallback.service import running
from shared import preferences_store
from shared.repository import Repository
from tests.fallback.conftest import RULES, job_states, send, worker_settings
from tests.fallback.support import PushService, SmtpServer, VapidKeys, eventually
from tests.gateway.cluster import new_user

SETTLE = 1.5  # seconds past the grace in which a wrong push would have arrived


async def test_an_offline_user_gets_the_push(
    clean: asyncpg.Pool,
    database_url: str,
    smtp: SmtpServer,
    vapid: VapidKeys,
    push_service: PushService,
) -> None:
    repo, user = Repository(clean), new_user()
    phone, laptop = push_service.device("phone"), push_service.device("laptop")
    for device in (phone, laptop):
        await preferences_store.add_push_subscription(clean, user, device.subscription())
    note = await send(repo, user, "Ping <b>", kind="order:status_changed", action_url="/o/1")
    async with running(worker_settings(database_url, smtp.port, vapid)):
        await eventually(lambda: _received(push_service, 2))
        await asyncio.sleep(0.5)
    assert push_service.errors == []
    assert sorted(r.path for r in push_service.received) == ["/push/laptop", "/push/phone"]
    for got in push_service.received:
        assert got.payload == {
            "id": note.id,
            "title": "Ping <b>",
            "body": "Body of Ping <b>",
            "type": "order:status_changed",
            "actionUrl": "/o/1",
        }
        assert got.claims["aud"] == push_service.origin
        assert got.headers["ttl"] == "60"
    assert await job_states(clean, user) == [("push", "done", "sent")]
    assert smtp.messages == []  # order:status_changed: push only


async def test_an_online_user_who_acked_gets_no_push(
    clean: asyncpg.Pool,
    database_url: str,
    smtp: SmtpServer,
    vapid: VapidKeys,
    push_service: PushService,
) -> None:
    repo, user = Repository(clean), new_user()
    device = push_service.device("tab-open")
    await preferences_store.add_push_subscription(clean, user, device.subscription())
    note = await send(repo, user, "Seen live", kind="order:status_changed")
    assert await repo.mark_delivered([(user, note.seq)]) == 1  # the tab's ack
    async with running(worker_settings(database_url, smtp.port, vapid)):
        await asyncio.sleep(RULES.push_grace + SETTLE)
    assert push_service.received == [] and push_service.errors == []
    assert await job_states(clean, user) == [("push", "cancelled", "online")]


async def test_410_removes_the_subscription(
    clean: asyncpg.Pool,
    database_url: str,
    smtp: SmtpServer,
    vapid: VapidKeys,
    push_service: PushService,
) -> None:
    repo, user = Repository(clean), new_user()
    gone = push_service.device("expired", status=410)
    alive = push_service.device("alive")
    for device in (gone, alive):
        await preferences_store.add_push_subscription(clean, user, device.subscription())
    await send(repo, user, "To both", kind="order:status_changed")
    async with running(worker_settings(database_url, smtp.port, vapid)):
        await eventually(lambda: _received(push_service, 1))
        await eventually(lambda: _subscriptions(clean, user, 1))
    left = await preferences_store.push_subscriptions(clean, user)
    assert [s.endpoint for s in left] == [alive.endpoint]
    assert await job_states(clean, user) == [("push", "done", "sent")]


async def _received(service: PushService, n: int) -> bool:
    return len(service.received) >= n


async def _subscriptions(pool: asyncpg.Pool, user: str, n: int) -> bool:
    return len(await preferences_store.push_subscriptions(pool, user)) == n
