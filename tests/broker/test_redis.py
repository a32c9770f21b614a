"""What only the Redis broker has: the URL's login and database, a frozen network link, and
its reader against redis-py's own (the same bytes must come out)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio.connection import Connection

from shared import keys
from shared.broker import BrokerMetrics, BrokerUnavailable, RedisBroker
from shared.broker.link import Endpoint, command
from shared.broker.pipelined import pack_publishes
from tests.broker.conftest import Recorder, eventually
from tests.support.tcpproxy import TcpProxy, tcp_proxy


def test_the_endpoint_is_read_from_the_url_by_redis_py() -> None:
    plain = Endpoint.from_url("redis://:secret@10.0.0.7/3")
    assert (plain.host, plain.port, plain.db, plain.username, plain.password, plain.ssl) == (
        "10.0.0.7", 6379, 3, None, "secret", None,
    )  # fmt: skip
    assert plain.login()[0] == b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"
    tls = Endpoint.from_url("rediss://tocsin:pw@redis.example:6380/0")
    assert (tls.username, tls.password, tls.port) == ("tocsin", "pw", 6380)
    assert isinstance(tls.ssl, ssl.SSLContext) and tls.ssl.verify_mode == ssl.CERT_REQUIRED
    assert tls.login() == [b"*3\r\n$4\r\nAUTH\r\n$6\r\ntocsin\r\n$2\r\npw\r\n"]
    unix = Endpoint.from_url("unix:///run/redis.sock?db=2")
    assert (unix.path, unix.db) == ("/run/redis.sock", 2)


@contextlib.asynccontextmanager
async def running(broker: RedisBroker) -> AsyncIterator[RedisBroker]:
    task = asyncio.create_task(broker.run())
    try:
        await asyncio.wait_for(broker.connected.wait(), 10)
        yield broker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await broker.close()


async def test_the_link_logs_in_as_the_urls_user_and_selects_its_database(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    name, password = f"tocsin-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await redis_client.acl_setuser(
        name, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"],
        commands=["+@all"],
    )  # fmt: skip
    parts = urlsplit(redis_url)
    url = parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port}").geturl()
    url = url.rsplit("/", 1)[0] + "/5"
    rec = Recorder()
    user = f"bt-{uuid.uuid4().hex[:8]}"
    try:
        async with running(RedisBroker(url, on_message=rec.on_message)) as broker:
            await broker.subscribe(user)
            await broker.publish(user, b"hello")
            await rec.until(lambda: rec.messages == [(user, b"hello")])
            [link] = [
                c for c in await redis_client.client_list() if c["name"] == broker.client_name
            ]
            assert (link["user"], link["db"]) == (name, "5")
    finally:
        await redis_client.acl_deluser(name)


async def test_a_refused_login_keeps_the_broker_down(redis_url: str) -> None:
    parts = urlsplit(redis_url)
    url = parts._replace(netloc=f"nobody:wrong@{parts.hostname}:{parts.port}").geturl()
    errors = Counter("errors", "links lost", registry=CollectorRegistry())
    broker = RedisBroker(url, metrics=BrokerMetrics(errors=errors), confirm_timeout=1)
    task = asyncio.create_task(broker.run())
    try:
        await eventually(lambda: errors._value.get() >= 2)  # two attempts, each refused
        assert broker.status() == "down: not connected"
        with pytest.raises(BrokerUnavailable):
            await broker.subscribe("anyone")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await broker.close()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[tuple[TcpProxy, str]]:
    target = urlsplit(redis_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        yield proxy, target._replace(netloc=proxy.url_host_port).geturl()


async def test_a_frozen_link_goes_down_then_recovers_and_delivers(
    proxy: tuple[TcpProxy, str],
) -> None:
    tcp, url = proxy
    rec = Recorder()
    held = f"bt-{uuid.uuid4().hex[:8]}"
    rec.users.append(held)
    broker = RedisBroker(
        url,
        on_message=rec.on_message,
        users=lambda: list(rec.users),
        on_recovered=rec.on_recovered,
        probe_interval=0.1,
        confirm_timeout=1,
    )
    async with running(broker):
        await broker.subscribe(held)
        recoveries = rec.recoveries
        tcp.stall()
        await eventually(lambda: not broker.healthy)
        assert broker.status().startswith("down")
        with pytest.raises(BrokerUnavailable):
            await broker.subscribe(f"bt-{uuid.uuid4().hex[:8]}")
        tcp.heal()
        await rec.until(lambda: rec.recoveries > recoveries and broker.healthy)
        await broker.publish(held, b"after")
        await rec.until(lambda: (held, b"after") in rec.messages)


def test_packed_publishes_are_the_bytes_redis_py_would_send() -> None:
    messages = [("ana", b"n 1 2\n{}"), ("b\u00e9a", b""), ("c", b"\r\n*3\r\n$7\r\n")]
    expected = b"".join(
        b"".join(Connection().pack_command("PUBLISH", keys.user_channel(user), data))
        for user, data in messages
    )
    assert pack_publishes(messages) == expected
    args = (b"ZADD", b"presence:\xc3\xa9", b"17", b"node \r\n")
    assert command(*args) == b"".join(Connection().pack_command(*args))


async def test_publish_many_fails_while_the_link_is_cut_or_frozen_then_recovers(
    proxy: tuple[TcpProxy, str], redis_url: str
) -> None:
    tcp, url = proxy
    user = f"bt-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(url)
    broker = RedisBroker.publishing(client)
    listener = aioredis.Redis.from_url(redis_url).pubsub()
    await listener.subscribe(keys.user_channel(user))
    try:
        await broker.publish_many([(user, b"1")])
        tcp.cut()
        with pytest.raises(BrokerUnavailable):
            await broker.publish_many([(user, b"lost")])
        tcp.heal()
        await broker.publish_many([(user, b"2")])
        tcp.stall()
        with pytest.raises(TimeoutError):  # the caller's bound; the connection is dropped
            async with asyncio.timeout(0.3):
                await broker.publish_many([(user, b"frozen")])
        tcp.heal()
        await broker.publish_many([(user, b"3"), (user, b"4")])
        got = []
        async with asyncio.timeout(5):
            while b"4" not in got:
                message = await listener.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    got.append(message["data"])
        # In order, nothing twice; the frozen one may still have reached Redis (the outbox
        # publishes it again, and gateways drop the repeat).
        assert [m for m in got if m != b"frozen"] == [b"1", b"2", b"3", b"4"]
    finally:
        await listener.aclose()
        await broker.close()
        await client.aclose()


async def test_a_refused_publish_raises_and_the_connection_stays_usable(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    name, password = f"tocsin-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    allowed = f"bt-{uuid.uuid4().hex[:8]}"
    await redis_client.acl_setuser(
        name, enabled=True, passwords=[f"+{password}"], channels=[keys.user_channel(allowed)],
        commands=["+publish", "+select", "+ping"],
    )  # fmt: skip
    parts = urlsplit(redis_url)
    url = parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port}").geturl()
    client = aioredis.Redis.from_url(url)
    broker = RedisBroker.publishing(client)
    try:
        with pytest.raises(BrokerUnavailable, match="refused"):
            await broker.publish_many([(allowed, b"ok"), ("someone-else", b"no")])
        await broker.publish_many([(allowed, b"again")])
    finally:
        await broker.close()
        await client.aclose()
        await redis_client.acl_deluser(name)
