"""The fault proxy the delivery tests rely on does what it says, against the real Redis."""

from __future__ import annotations

import contextlib
import socket
from urllib.parse import urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.tcpproxy import tcp_proxy


def _client(port: int, db: str) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        db=int(db or 0),
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),  # every fault must surface, not be retried away
    )


def test_pass_stall_heal_blackhole_and_cut(redis_url: str) -> None:
    target = urlsplit(redis_url)
    db = target.path.strip("/")
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        client = _client(proxy.port, db)
        assert client.ping()
        proxy.stall()
        with pytest.raises(redis.TimeoutError):
            client.ping()
        proxy.heal()
        client.connection_pool.disconnect()  # the stalled reply is stale now
        assert client.ping()
        proxy.blackhole()
        fresh = _client(proxy.port, db)
        with pytest.raises(redis.TimeoutError):
            fresh.ping()
        proxy.heal()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as raw:
            raw.sendall(b"PING\r\n")
            assert raw.recv(64) == b"+PONG\r\n"
            proxy.cut()
            with contextlib.suppress(ConnectionResetError):  # a reset also means gone
                assert raw.recv(64) == b""  # end of stream
        assert _client(proxy.port, db).ping()
