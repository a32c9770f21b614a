"""Every Redis key and channel name Tocsin uses. Nothing else builds key strings."""

from __future__ import annotations

# Pub/sub channel carrying one user's messages (envelopes: new notifications and read-state
# events). Only shared/broker/ uses the channel names: everything else names users by id.
USER_CHANNEL_PREFIX = "user:"
# Sorted set per user: member = gateway node id, score = expiry (unix ms) of that node's claim.
PRESENCE_PREFIX = "tocsin:presence:"
# Sorted set of live gateway nodes: member = node id, score = expiry (unix ms).
NODES_KEY = "tocsin:nodes"


def user_channel(user_id: str) -> str:
    return f"{USER_CHANNEL_PREFIX}{user_id}"


def user_from_channel(channel: str) -> str:
    return channel[len(USER_CHANNEL_PREFIX) :]


def presence_key(user_id: str) -> str:
    return f"{PRESENCE_PREFIX}{user_id}"


def node_channel(node_id: str) -> str:
    """A gateway's own channel: its pub/sub liveness probe travels through it."""
    return f"tocsin:node:{node_id}"
