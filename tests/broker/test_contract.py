"""The Broker contract, held by RedisBroker (real Redis) and MemoryBroker alike."""

from __future__ import annotations

import asyncio

import pytest

from shared.broker import BrokerUnavailable
from tests.broker.conftest import Kit, Recorder


async def test_a_publish_right_after_subscribe_returns_is_delivered(kit: Kit) -> None:
    rec = Recorder()
    broker = await kit.start(rec)
    users = [kit.user(f"confirm-{i}") for i in range(20)]
    for user in users:
        await broker.subscribe(user)
        # No sleep: subscribe() returned only once the subscription was confirmed.
        assert await kit.receivers(user, b"hello " + user.encode()) == 1
    await rec.until(lambda: len(rec.messages) == 20)
    assert rec.messages == [(user, b"hello " + user.encode()) for user in users]


async def test_messages_arrive_in_publish_order_per_user(kit: Kit) -> None:
    rec = Recorder()
    broker = await kit.start(rec)
    a, b = kit.user("a"), kit.user("b")
    await asyncio.gather(broker.subscribe(a), broker.subscribe(b))
    batch = [(a if i % 3 else b, b"%d" % i) for i in range(3000)]
    await broker.publish_many(batch[:1500])
    for user, data in batch[1500:1600]:
        await broker.publish(user, data)
    await broker.publish_many(batch[1600:])
    await rec.until(lambda: len(rec.messages) == 3000)
    assert rec.of(a) == [data for user, data in batch if user == a]
    assert rec.of(b) == [data for user, data in batch if user == b]


async def test_after_unsubscribe_returns_nothing_more_is_delivered(kit: Kit) -> None:
    rec = Recorder()
    broker = await kit.start(rec)
    gone, stays = kit.user("gone"), kit.user("stays")
    await asyncio.gather(broker.subscribe(gone), broker.subscribe(stays))
    await broker.publish_many([(gone, b"before"), (stays, b"before")])
    await rec.until(lambda: len(rec.messages) == 2)
    await broker.unsubscribe(gone)
    await broker.publish_many([(gone, b"after"), (stays, b"after")])
    await rec.until(lambda: rec.of(stays) == [b"before", b"after"])
    assert rec.of(gone) == [b"before"]


async def test_a_lost_link_is_replaced_resubscribed_then_recovered(kit: Kit) -> None:
    rec = Recorder()
    broker = await kit.start(rec)
    survivor = kit.user("survivor")
    rec.users.append(survivor)
    await broker.subscribe(survivor)
    recoveries = rec.recoveries
    await kit.kill(broker)
    await rec.until(lambda: rec.recoveries > recoveries)
    # Recovery is announced only once the resubscribe is confirmed: no retry needed.
    assert broker.status() == "ok"
    await broker.publish(survivor, b"after")
    await rec.until(lambda: (survivor, b"after") in rec.messages)
    await broker.subscribe(kit.user("newcomer"))  # and the new link takes subscribes


async def test_subscribe_while_down_raises_so_the_node_can_degrade(kit: Kit) -> None:
    rec = Recorder()
    broker = kit.make(rec)  # never run: no link
    with pytest.raises(BrokerUnavailable):
        await broker.subscribe(kit.user("nobody"))
    assert broker.status().startswith("down")
    assert not broker.healthy


async def test_users_arriving_while_the_link_connects_are_subscribed_too(kit: Kit) -> None:
    rec = Recorder()
    early, late = kit.user("early"), kit.user("late")
    looks = 0

    def users() -> list[str]:
        nonlocal looks
        looks += 1  # the user's first socket lands between two looks at the hub
        return [early] if looks == 1 else [early, late]

    broker = await kit.start(rec, users)
    assert looks >= 2
    await broker.publish_many([(early, b"1"), (late, b"2")])
    await rec.until(lambda: len(rec.messages) == 2)
    assert sorted(rec.messages) == [(early, b"1"), (late, b"2")]


async def test_a_burst_of_subscribes_goes_out_in_few_commands_each_confirmed(kit: Kit) -> None:
    rec = Recorder()
    broker = await kit.start(rec)
    users = [kit.user(f"burst-{i}") for i in range(500)]
    before = broker.subscribe_commands
    await asyncio.gather(*(broker.subscribe(user) for user in users))
    assert broker.subscribe_commands - before <= 2
    await broker.publish_many([(user, user.encode()) for user in users])
    await rec.until(lambda: len(rec.messages) == 500)
    assert sorted(rec.messages) == sorted((user, user.encode()) for user in users)


async def test_large_and_protocol_like_messages_arrive_intact(kit: Kit) -> None:
    rec = Recorder()
    broker = await kit.start(rec)
    user = kit.user("bytes")
    await broker.subscribe(user)
    big = bytes(range(256)) * (2 * 1024 * 1024 // 256)  # 2 MiB, every byte value
    tricky = [b"a\r\nb", b"*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$1\r\ny\r\n", b"", b"\r\n"]
    await broker.publish(user, big)
    await broker.publish_many([(user, data) for data in tricky])
    await rec.until(lambda: len(rec.messages) == 1 + len(tricky))
    assert rec.of(user) == [big, *tricky]


async def test_a_failing_handler_does_not_stop_delivery(kit: Kit) -> None:
    rec = Recorder()
    bad = kit.user("bad")

    def on_message(user_id: str, data: bytes) -> None:
        if user_id == bad:
            raise RuntimeError("the handler broke")
        rec.on_message(user_id, data)

    broker = await kit.start(rec, on_message=on_message)
    good = kit.user("good")
    await asyncio.gather(broker.subscribe(bad), broker.subscribe(good))
    await broker.publish_many([(bad, b"x"), (good, b"y")])
    await rec.until(lambda: rec.of(good) == [b"y"])
    assert broker.healthy
