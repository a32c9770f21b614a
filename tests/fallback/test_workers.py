"""Several `tocsin worker` processes: every job sent once; a worker killed (-9) mid-send
leaves the job to another, still sent once; SMTP down: retried, then sent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from dispatcher.fallback.service import running
from shared.repository import Repository
from tests.fallback.conftest import PUBLIC_URL, SENDER, UNSUBSCRIBE_SECRET, send, worker_settings
from tests.fallback.support import SmtpServer, eventually
from tests.gateway.cluster import new_user
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port

LEASE = 3.0  # seconds before a dead worker's job is taken over


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for worker in started:
        worker.terminate()


def start_worker(
    started: list[ServerProcess], database_url: str, smtp_port: int, log_dir: Path
) -> ServerProcess:
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "TOCSIN_NODE_ID": f"worker-{len(started)}-{port}",
        "TOCSIN_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "TOCSIN_SMTP_TIMEOUT": "2",
        "TOCSIN_EMAIL_FROM": SENDER,
        "TOCSIN_PUBLIC_URL": PUBLIC_URL,
        "TOCSIN_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET,
        "TOCSIN_WORKER_METRICS_PORT": str(port),
        "TOCSIN_WORKER_POLL_INTERVAL": "0.05",
        "TOCSIN_WORKER_LEASE": str(LEASE),
        "TOCSIN_WORKER_RETRY_BASE": "0.2",
        "TOCSIN_DIGEST_WINDOW": "0",
        "TOCSIN_LOG_FORMAT": "text",
    }
    worker = spawn(["worker"], env, port, log_dir, ready_path="/readyz")
    started.append(worker)
    return worker


async def test_two_workers_send_every_job_exactly_once(
    clean: asyncpg.Pool,
    database_url: str,
    smtp: SmtpServer,
    workers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    repo = Repository(clean)
    notes = [await send(repo, new_user(), f"Note {i}") for i in range(30)]
    for _ in range(2):
        start_worker(workers, database_url, smtp.port, tmp_path)
    await eventually(lambda: _count(smtp, len(notes)), within=30)
    await eventually(lambda: _all_done(clean), within=10)
    sent = Counter(m["X-Tocsin-Notifications"] for m in smtp.messages)
    assert sent == Counter({n.id: 1 for n in notes})
    owners = await clean.fetch("SELECT DISTINCT owner FROM tocsin_fallback_sends")
    assert len(owners) >= 1  # either worker may have taken any job; none twice
    assert all("Traceback" not in w.log() for w in workers)


async def test_a_worker_killed_mid_send_leaves_the_job_to_another(
    clean: asyncpg.Pool, database_url: str, workers: list[ServerProcess], tmp_path: Path
) -> None:
    slow = SmtpServer(hold_first_rcpt=10.0).start()  # the first worker's send hangs at RCPT
    try:
        repo, user = Repository(clean), new_user()
        note = await send(repo, user, "Survives a crash")
        first = start_worker(workers, database_url, slow.port, tmp_path)
        await eventually(lambda: _rcpts(slow, 1), within=10)
        first.kill()  # SIGKILL while the message is not yet handed over (no DATA)
        second = start_worker(workers, database_url, slow.port, tmp_path)
        await eventually(lambda: _count(slow, 1), within=LEASE + 10)
        await eventually(lambda: _all_done(clean), within=5)
        assert [m["X-Tocsin-Notifications"] for m in slow.messages] == [note.id]
        record = await clean.fetchrow("SELECT state, owner FROM tocsin_fallback_sends")
        assert record is not None and record["state"] == "sent"
        assert second.log().count("email sent") == 1 and record["owner"].startswith("worker-1")
    finally:
        slow.stop()


async def test_smtp_down_is_retried_then_sent(clean: asyncpg.Pool, database_url: str) -> None:
    port = free_port()  # nothing listens yet
    repo, user = Repository(clean), new_user()
    note = await send(repo, user, "Waits for SMTP")
    async with running(worker_settings(database_url, port)):
        await eventually(lambda: _attempts(clean, 2), within=10)
        smtp = SmtpServer(port=port).start()
        try:
            await eventually(lambda: _count(smtp, 1), within=10)
        finally:
            smtp.stop()
    assert [m["X-Tocsin-Notifications"] for m in smtp.messages] == [note.id]
    row = await clean.fetchrow("SELECT state, outcome, last_error FROM tocsin_fallback_jobs")
    assert row is not None and (row["state"], row["outcome"]) == ("done", "sent")
    assert "SMTP unreachable" in row["last_error"]


async def _count(smtp: SmtpServer, n: int) -> bool:
    return len(smtp.messages) >= n


async def _rcpts(smtp: SmtpServer, n: int) -> bool:
    return smtp.inbox.rcpts >= n


async def _all_done(pool: asyncpg.Pool) -> bool:
    left = await pool.fetchval("SELECT count(*) FROM tocsin_fallback_jobs WHERE state = 'pending'")
    return int(left) == 0


async def _attempts(pool: asyncpg.Pool, n: int) -> bool:
    found = await pool.fetchval("SELECT max(attempts) FROM tocsin_fallback_jobs")
    return int(found or 0) >= n
