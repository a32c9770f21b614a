"""Email through a real SMTP server on loopback: once after the delay, none when read, one
digest for five, escaped content, working links, preferences and quiet hours."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from dispatcher.fallback.service import running
from gateway import unsubscribe
from shared import preferences_store
from shared.preferences import Preferences
from shared.repository import Repository
from tests.fallback.conftest import (
    EMAIL_DELAY,
    PUBLIC_URL,
    UNSUBSCRIBE_SECRET,
    job_states,
    send,
    worker_settings,
)
from tests.fallback.support import SmtpServer, eventually, parts
from tests.gateway.cluster import new_user
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port

SETTLE = 1.5  # seconds past the delay in which a wrongly sent email would have arrived


@pytest.fixture
def gateway(env_base: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    """A real gateway that signs and checks unsubscribe links with the worker's secret."""
    port = free_port()
    env = {**env_base, "TOCSIN_GATEWAY_PORT": str(port)}
    server = spawn(
        ["gateway"], {**env, "TOCSIN_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET}, port, tmp_path
    )
    yield server
    server.terminate()


async def test_one_email_for_a_notification_still_unread(
    clean: asyncpg.Pool, database_url: str, smtp: SmtpServer
) -> None:
    repo, user = Repository(clean), new_user()
    title = 'Bob wrote <script>alert("x")</script> & more'
    note = await send(repo, user, title)
    async with running(worker_settings(database_url, smtp.port)):
        await eventually(lambda: _count(smtp, 1))
        await _settle()
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["Subject"] == title
    assert message["To"] == "alice@example.com"
    assert message["X-Tocsin-Notifications"] == note.id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(message)
    assert title in text  # plain text is not HTML: the title as written
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in html
    assert f'href="{PUBLIC_URL}/messages/7"' in html and f"{PUBLIC_URL}/messages/7" in text
    link = re.search(r'href="([^"]*/v1/unsubscribe[^"]*)"', html)
    assert link is not None
    header = message["List-Unsubscribe"].strip("<>")
    assert header == link.group(1).replace("&amp;", "&")
    assert await job_states(clean, user) == [("email", "done", "sent")]


async def test_the_unsubscribe_link_turns_that_types_email_off(
    clean: asyncpg.Pool, database_url: str, smtp: SmtpServer, gateway: ServerProcess
) -> None:
    repo, user = Repository(clean), new_user()
    await send(repo, user, "First")
    async with running(worker_settings(database_url, smtp.port)):
        await eventually(lambda: _count(smtp, 1))
    url = smtp.messages[0]["List-Unsubscribe"].strip("<>")
    assert url.startswith(PUBLIC_URL + unsubscribe.PATH)
    target = urlsplit(url)
    async with httpx.AsyncClient(base_url=gateway.url) as client:  # PUBLIC_URL is the gateway
        page = await client.get(f"{target.path}?{target.query}")
        assert page.status_code == 200 and "message:received" in page.text
        assert '<form method="post"' in page.text
        done = await client.post(
            f"{target.path}?{target.query}", content="List-Unsubscribe=One-Click"
        )
        assert done.status_code == 200 and "no more" in done.text
        forged = await client.post(f"{target.path}?{target.query}x")
        assert forged.status_code == 400
    prefs = await preferences_store.get(clean, user)
    assert not prefs.allows("email", "message:received", True)
    assert prefs.allows("email", "mention:comment", True)  # only that type
    await send(repo, user, "Second")
    assert ("email", "pending", None) not in await job_states(clean, user)
    assert len(smtp.messages) == 1


async def test_no_email_when_read_before_the_delay(
    clean: asyncpg.Pool, database_url: str, smtp: SmtpServer
) -> None:
    repo, user = Repository(clean), new_user()
    note = await send(repo, user, "Read in time")
    assert await repo.mark_read(user, note.id) is not None
    async with running(worker_settings(database_url, smtp.port)):
        await _settle(EMAIL_DELAY + SETTLE)
    assert smtp.messages == []
    assert await job_states(clean, user) == [("email", "cancelled", "read")]


async def test_one_digest_for_five_unread(
    clean: asyncpg.Pool, database_url: str, smtp: SmtpServer
) -> None:
    repo, user = Repository(clean), new_user()
    notes = [await send(repo, user, f"Message {i}") for i in range(5)]
    async with running(worker_settings(database_url, smtp.port)):
        await eventually(lambda: _count(smtp, 1))
        await _settle()
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["Subject"] == "5 unread notifications"
    text, html = parts(message)
    for note in notes:
        assert note.title in text and note.title in html
    assert set(message["X-Tocsin-Notifications"].split(", ")) == {n.id for n in notes}
    assert [s for _, s, _ in await job_states(clean, user)] == ["done"] * 5


async def test_email_off_for_the_type_sends_nothing(
    clean: asyncpg.Pool, database_url: str, smtp: SmtpServer
) -> None:
    repo, user = Repository(clean), new_user()
    note = await send(repo, user, "Wanted off")
    off = Preferences.from_wire({"channels": {"email": {"message:received": False}}})
    await preferences_store.put(clean, user, off)  # after the job was created: checked at run
    async with running(worker_settings(database_url, smtp.port)):
        await _settle(EMAIL_DELAY + SETTLE)
    assert smtp.messages == []
    assert await job_states(clean, user) == [("email", "cancelled", "preferences")]
    assert note.id


async def test_quiet_hours_delay_the_email(
    clean: asyncpg.Pool, database_url: str, smtp: SmtpServer
) -> None:
    repo, user = Repository(clean), new_user()
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=2))
    quiet = {"start": start, "end": end.strftime("%H:%M"), "timeZone": "UTC"}
    await preferences_store.put(clean, user, Preferences.from_wire({"quietHours": quiet}))
    await send(repo, user, "At night")
    async with running(worker_settings(database_url, smtp.port)):
        await _settle(EMAIL_DELAY + SETTLE)
    assert smtp.messages == []
    due = await clean.fetchval(
        "SELECT due_at FROM tocsin_fallback_jobs WHERE user_id = $1 AND state = 'pending'", user
    )
    assert due is not None and due > now + timedelta(hours=1, minutes=55)


async def _count(smtp: SmtpServer, n: int) -> bool:
    return len(smtp.messages) >= n


async def _settle(seconds: float = SETTLE) -> None:
    import asyncio

    await asyncio.sleep(seconds)
