"""Fixtures: a clean fallback schema, a loopback SMTP server, a loopback push service, and
worker settings with short delays."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from shared.config import EmailSettings, SmtpSettings, VapidSettings, WorkerSettings
from shared.fallback_jobs import FallbackRequest
from shared.fallback_rules import Rules
from shared.models import NewNotification, Notification
from shared.repository import Repository
from tests.fallback.support import PushService, SmtpServer, VapidKeys

UNSUBSCRIBE_SECRET = "test-unsubscribe-secret-" + secrets.token_hex(16)
PUBLIC_URL = "http://app.test"
SENDER = "Tocsin <no-reply@tocsin.test>"
EMAIL_DELAY = 0.5  # seconds: "email if still unread after N", shortened
RULES = Rules(push_grace=0.3, email_delay=EMAIL_DELAY)

FALLBACK_TABLES = (
    "tocsin_fallback_jobs, tocsin_fallback_sends, tocsin_user_profiles,"
    " tocsin_user_preferences, tocsin_push_subscriptions"
)


@pytest.fixture
async def clean(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute(f"TRUNCATE {FALLBACK_TABLES}")
    return pool


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def vapid() -> VapidKeys:
    return VapidKeys.generate()


@pytest.fixture
def push_service(vapid: VapidKeys) -> Iterator[PushService]:
    service = PushService(vapid.public_key).start()
    yield service
    service.stop()


def worker_settings(
    database_url: str, smtp_port: int, vapid: VapidKeys | None = None, **overrides: Any
) -> WorkerSettings:
    email = EmailSettings(
        SmtpSettings("127.0.0.1", smtp_port, timeout=3.0), SENDER, PUBLIC_URL, UNSUBSCRIBE_SECRET
    )
    keys = None
    if vapid is not None:
        keys = VapidSettings(vapid.private_key, vapid.public_key, "mailto:ops@tocsin.test", 60, 3.0)
    settings = WorkerSettings(
        database_url=database_url,
        email=email,
        vapid=keys,
        node_id="test-worker-" + secrets.token_hex(3),
        poll_interval=0.05,
        lease=5.0,
        retry_base=0.2,
        retry_max=0.5,
        digest_window=3.0,
        metrics_port=0,
    )
    return dataclasses.replace(settings, **overrides)


async def send(
    repo: Repository,
    user_id: str,
    title: str = "Hello",
    *,
    kind: str = "message:received",
    email: str | None = "alice@example.com",
    channels: tuple[str, ...] | None = None,
    action_url: str | None = "/messages/7",
    rules: Rules = RULES,
) -> Notification:
    """Store one notification with its fallback jobs, as the dispatcher does."""
    new = NewNotification(type=kind, title=title, body="Body of " + title, action_url=action_url)
    request = FallbackRequest(rules.plan(kind, channels), email)
    stored = await repo.insert(new, [user_id], request)
    return stored[0].notification


async def job_states(pool: asyncpg.Pool, user_id: str) -> list[tuple[str, str, str | None]]:
    rows = await pool.fetch(
        "SELECT channel, state, outcome FROM tocsin_fallback_jobs WHERE user_id = $1 ORDER BY id",
        user_id,
    )
    return [(r["channel"], r["state"], r["outcome"]) for r in rows]
