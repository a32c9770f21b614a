"""What every broker is: per-user publish and subscribe, at most once, in order per user.

The rest of Tocsin names users by id; only a broker knows how a user maps onto its
transport (a Redis channel today, a sharded channel on Redis Cluster later)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter, Gauge

# Called once per message with the user it is for and the envelope bytes (shared/envelope.py),
# straight from the reading loop: it must not block.
OnMessage = Callable[[str, bytes], None]
# Every user the node holds, looked at when the link (re)connects to subscribe them all.
Users = Callable[[], Iterable[str]]
# The link is back with every user subscribed: what it dropped must be re-read from the store.
OnRecovered = Callable[[], None]


class BrokerUnavailable(Exception):
    """The broker cannot publish or subscribe now; a subscriber link resubscribes everything
    and calls on_recovered when it is back."""


class Broker(Protocol):
    """Delivery is at most once: a lost link drops messages, which is why a recovered link
    calls on_recovered. Messages to one user arrive in the order they were published."""

    connected: asyncio.Event

    @property
    def healthy(self) -> bool: ...

    def status(self) -> str:
        """'ok', or why the link cannot be trusted to deliver."""
        ...

    async def publish(self, user_id: str, message: bytes) -> None:
        """Raises BrokerUnavailable when the message may not have gone out."""
        ...

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Pipelined, in order; raises BrokerUnavailable when any may not have gone out."""
        ...

    async def subscribe(self, user_id: str) -> None:
        """Returns once the subscription is confirmed: a message published afterwards is
        delivered. Raises BrokerUnavailable while the link is down or unconfirmed."""
        ...

    async def unsubscribe(self, user_id: str) -> None:
        """Returns once nothing more is delivered for the user (or the link is down anyway).
        Never raises: a lost link drops every subscription."""
        ...

    async def run(self) -> None:
        """Keep the subscriber link up until cancelled (publish-only brokers never run)."""
        ...

    async def close(self) -> None: ...


def nothing() -> None:
    """The default on_recovered of a broker that does not subscribe."""


def no_message(user_id: str, data: bytes) -> None:
    """The default on_message of a broker that does not subscribe."""


def no_users() -> Iterable[str]:
    return ()


@dataclass(frozen=True)
class BrokerMetrics:
    """The service's metric objects for the link (shared/ does not import the services)."""

    reconnects: Counter | None = None  # the link re-established after a loss
    errors: Counter | None = None  # the link lost (a labelled child: backend="redis")
    channels: Gauge | None = None  # subscriptions on the live link, read at scrape time
