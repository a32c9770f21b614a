"""End to end through a real dispatcher process: the producer sets a profile and preferences
and sends with `channels`; a worker delivers through the local SMTP server and push service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from dispatcher.fallback.service import running
from shared import preferences_store
from tests.conftest import PRODUCER_KEY
from tests.fallback.conftest import job_states, worker_settings
from tests.fallback.support import PushService, SmtpServer, VapidKeys, eventually
from tests.gateway.cluster import new_user
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port

AUTH = {"Authorization": f"Bearer {PRODUCER_KEY}"}


@pytest.fixture
def dispatcher(env_base: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    env = {
        **env_base,
        "TOCSIN_DISPATCHER_PORT": str(port),
        "TOCSIN_PUSH_GRACE": "0.2",
        "TOCSIN_EMAIL_DELAY": "0.5",
    }
    server = spawn(["dispatcher"], env, port, tmp_path)
    yield server
    server.terminate()


async def test_a_send_reaches_email_and_push_through_the_producer_api(
    clean: asyncpg.Pool,
    database_url: str,
    dispatcher: ServerProcess,
    smtp: SmtpServer,
    vapid: VapidKeys,
    push_service: PushService,
) -> None:
    user = new_user()
    device = push_service.device("phone")
    await preferences_store.add_push_subscription(clean, user, device.subscription())
    async with httpx.AsyncClient(base_url=dispatcher.url, headers=AUTH, timeout=10) as api:
        profile = {"email": "grace@example.com", "timeZone": "Europe/Paris", "locale": "en"}
        put = await api.put(f"/v1/users/{user}/profile", json=profile)
        assert put.status_code == 200 and put.json() == profile
        prefs = {"channels": {"email": {"*": True}, "push": {}}, "quietHours": None}
        assert (await api.put(f"/v1/users/{user}/preferences", json=prefs)).status_code == 200
        assert (await api.get(f"/v1/users/{user}/preferences")).json() == prefs
        sent = await api.post(
            "/v1/notifications",
            json={
                "user_id": user,
                "type": "invoice:overdue",
                "title": "Invoice 12 is due",
                "channels": ["push", "email"],
                "action_url": "/invoices/12",
            },
        )
        assert sent.status_code == 201
        note_id = sent.json()["notifications"][0]["id"]
        in_app = await api.post(
            "/v1/notifications",
            json={"user_id": user, "type": "invoice:overdue", "title": "Quiet", "channels": []},
        )
        assert in_app.status_code == 201
    async with running(worker_settings(database_url, smtp.port, vapid)):
        await eventually(lambda: _done(push_service, smtp))
    assert [m["X-Tocsin-Notifications"] for m in smtp.messages] == [note_id]
    assert smtp.messages[0]["To"] == "grace@example.com"
    assert [r.payload["id"] for r in push_service.received] == [note_id]
    assert sorted(await job_states(clean, user)) == [
        ("email", "done", "sent"),
        ("push", "done", "sent"),
    ]


async def test_bad_fallback_fields_are_named(dispatcher: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=dispatcher.url, headers=AUTH, timeout=10) as api:
        bad = await api.post(
            "/v1/notifications",
            json={
                "user_id": "u1",
                "type": "a:b",
                "title": "t",
                "email": "Ada <a@b.c>",
                "channels": ["sms"],
            },
        )
        assert bad.status_code == 422
        assert {f["field"] for f in bad.json()["error"]["fields"]} == {"email", "channels"}
        # "America" is a folder of the zone database: ZoneInfo raises OSError, not a 500 here.
        for zone_name in ("Mars/Olympus", "America", "../etc/passwd"):
            zone = await api.put("/v1/users/u1/profile", json={"timeZone": zone_name})
            assert zone.status_code == 422, zone.text
            assert zone.json()["error"]["fields"][0]["field"] == "timeZone"
            quiet = {"start": "22:00", "end": "07:00", "timeZone": zone_name}
            prefs = await api.put("/v1/users/u1/preferences", json={"quietHours": quiet})
            assert prefs.status_code == 422, prefs.text
        prefs = await api.put("/v1/users/u1/preferences", json={"channels": {"sms": {}}})
        assert prefs.status_code == 422
        anonymous = await api.get("/v1/users/u1/preferences", headers={"Authorization": ""})
        assert anonymous.status_code == 401


async def _done(push: PushService, smtp: SmtpServer) -> bool:
    return len(push.received) >= 1 and len(smtp.messages) >= 1
