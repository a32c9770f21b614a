"""The one boundary for pub/sub (issue 9): publish to a user, subscribe to a user, a handler
called per message. RedisBroker is the only code in Tocsin that publishes or subscribes;
MemoryBroker is its in-process twin for tests."""

from shared.broker.base import Broker, BrokerMetrics, BrokerUnavailable
from shared.broker.memory import MemoryBroker, MemoryBus
from shared.broker.redis import RedisBroker

__all__ = [
    "Broker",
    "BrokerMetrics",
    "BrokerUnavailable",
    "MemoryBroker",
    "MemoryBus",
    "RedisBroker",
]
