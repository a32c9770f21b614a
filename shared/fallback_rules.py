"""Which channels beyond in-app each notification type uses, in one place (docs/fallback.md).

In-app delivery (WebSocket and feed) is always on. Two fallback channels exist:

- ``push``: web push "when offline": due `push_grace` seconds after the notification, so an
  open tab can ack it first; a notification a tab acked (or the user read) is not pushed.
- ``email``: "if still unread" `email_delay` seconds after the notification; several for one
  user within the worker's digest window go out as one digest email.

The table below is the default per type. A producer may replace it for one send
(``channels``: a list of channels, ``[]`` for in-app only), and each user's preferences
(shared/preferences.py) override it per channel and type, within what the producer allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.config import ConfigError, Env

PUSH = "push"
EMAIL = "email"
CHANNELS: tuple[str, ...] = (PUSH, EMAIL)

# The built-in types' defaults. Why these:
#   message:received, mention:comment: someone is waiting on the user: push, then email.
#   task:assigned: work handed over: push, then email if it sits unread.
#   payment:processed: money moved: push, and an email record if unread.
#   order:status_changed: frequent and low-stakes: push only (shops send their own mail).
#   system:alert: operational notices for the page in use: in-app only.
DEFAULT_CHANNELS: dict[str, tuple[str, ...]] = {
    "message:received": (PUSH, EMAIL),
    "mention:comment": (PUSH, EMAIL),
    "task:assigned": (PUSH, EMAIL),
    "payment:processed": (PUSH, EMAIL),
    "order:status_changed": (PUSH,),
    "system:alert": (),
}

# TOCSIN_FALLBACK_DEFAULT values, for producer-defined types.
CUSTOM_DEFAULTS: dict[str, tuple[str, ...]] = {
    "none": (),
    "push": (PUSH,),
    "email": (EMAIL,),
    "push+email": (PUSH, EMAIL),
}


@dataclass(frozen=True)
class PlannedJob:
    """A job to create with a notification: its channel, delay, and the channel's default
    (before the user's preferences, which are read again when the job runs)."""

    channel: str
    delay: float  # seconds after the notification
    default_on: bool = True


@dataclass(frozen=True)
class Rules:
    custom_default: tuple[str, ...] = ()
    push_grace: float = 30.0
    email_delay: float = 600.0

    @classmethod
    def from_env(cls, env: Env | None = None) -> Rules:
        env = env or Env()
        name = env.string("TOCSIN_FALLBACK_DEFAULT", "none").lower()
        if name not in CUSTOM_DEFAULTS:
            raise ConfigError(
                "TOCSIN_FALLBACK_DEFAULT", f"must be one of {', '.join(CUSTOM_DEFAULTS)}"
            )
        return cls(
            custom_default=CUSTOM_DEFAULTS[name],
            push_grace=env.number("TOCSIN_PUSH_GRACE", 30.0, 0.0, 86_400.0),
            email_delay=env.number("TOCSIN_EMAIL_DELAY", 600.0, 0.0, 30 * 86_400.0),
        )

    def defaults(self, kind: str) -> tuple[str, ...]:
        """The type's channels when neither the producer nor the user says otherwise."""
        return DEFAULT_CHANNELS.get(kind, self.custom_default)

    def delay(self, channel: str) -> float:
        return self.push_grace if channel == PUSH else self.email_delay

    def plan(self, kind: str, requested: Sequence[str] | None) -> list[PlannedJob]:
        """Jobs a notification may need. With `requested` (the producer's `channels`), only
        those channels, on by default; else every channel, on when the type's rule says so
        (a user's preferences may still turn an off-by-default channel on)."""
        if requested is not None:
            return [PlannedJob(c, self.delay(c), True) for c in CHANNELS if c in requested]
        defaults = self.defaults(kind)
        return [PlannedJob(c, self.delay(c), c in defaults) for c in CHANNELS]
