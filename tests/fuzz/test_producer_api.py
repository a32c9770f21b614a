"""POST /v1/notifications with generated bodies against a real dispatcher and PostgreSQL:
never a 5xx; a 422 names each bad field; an accepted notification is stored whole for every
recipient, and a refused one stores nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from hypothesis import HealthCheck, event, given, settings

from tests.conftest import PRODUCER_KEY
from tests.fuzz.strategies import USER, bodies
from tests.gateway.cluster import Cluster

EXAMPLES = 150


def with_fresh_users(body: Any) -> tuple[str, list[str]]:
    """The JSON text with every placeholder replaced by a new user id, and those ids."""
    fresh: list[str] = []

    def swap(value: Any) -> Any:
        if value == USER:
            fresh.append(f"fuzz-{uuid.uuid4().hex[:12]}")
            return fresh[-1]
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    if isinstance(body, dict):
        body = {k: swap(v) if k in ("user_id", "user_ids") else v for k, v in body.items()}
    return json.dumps(body), fresh


async def stored(database_url: str, users: list[str]) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id::text, user_id, seq, type, title, body, action_url, data::text AS data,"
            " idempotency_key, expires_at FROM tocsin_notifications WHERE user_id = ANY($1)",
            users,
        )
        seqs = await conn.fetchval(
            "SELECT count(*) FROM tocsin_user_seq WHERE user_id = ANY($1)", users
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows] + [{"seq_rows": seqs}] * (seqs > len(rows))


def as_doubles(value: Any) -> Any:
    """Numbers as the doubles a browser reads: jsonb keeps a number's digits, not its JSON
    spelling (6.900925196919462e+16 comes back as 69009251969194620, the same double)."""
    if isinstance(value, dict):
        return {k: as_doubles(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_doubles(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def check_stored(sent: dict[str, Any], answer: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    by_id = {r["id"]: r for r in rows}
    for item in answer["notifications"]:
        row = by_id[item["id"]]
        assert (row["user_id"], row["seq"]) == (item["user_id"], item["seq"])
        assert (row["type"], row["title"]) == (sent["type"], sent["title"])
        assert row["body"] == (sent.get("body") or "")
        assert row["action_url"] == sent.get("action_url")
        assert as_doubles(json.loads(row["data"])) == as_doubles(sent.get("data") or {})
        assert row["idempotency_key"] == sent.get("idempotency_key")
        expires = sent.get("expires_at")
        if expires is None:
            assert row["expires_at"] is None
        else:
            assert row["expires_at"] == datetime.fromisoformat(expires)
    assert len(rows) == len(answer["notifications"])


@settings(
    settings.get_profile("tocsin-fuzz"),
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_generated_bodies_never_break_the_producer_api(
    cluster: Cluster, database_url: str, body: Any
) -> None:
    assert cluster.dispatcher is not None
    content, fresh = with_fresh_users(body)
    answer = httpx.post(
        cluster.dispatcher.url + "/v1/notifications",
        content=content.encode(),
        headers={"Authorization": f"Bearer {PRODUCER_KEY}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code < 500, answer.text
    event(f"status {answer.status_code}")
    rows = asyncio.run(stored(database_url, fresh)) if fresh else []
    if answer.status_code in (200, 201):
        check_stored(json.loads(content), answer.json(), rows)
        return
    assert answer.status_code in (400, 413, 422), answer.text
    error = answer.json()["error"]
    assert error["message"]
    if answer.status_code == 422:
        assert error["fields"]
        for bad in error["fields"]:
            assert bad["message"]
            # An unknown field is named as sent, even when its name is "".
            assert bad["field"] or bad["message"] == "unknown field", bad
    assert rows == [], "a refused notification stored something"
