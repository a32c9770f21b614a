"""Resume scenarios (FULL=1): a reconnect storm (every tab drops, 10 notifications are sent
to each of its users through the dispatcher, then every tab comes back at once and resumes
them) and one user resuming 5,000. Both time how long until every tab is whole."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import dispatch
from bench.procs import LoadClient, Server
from bench.systems import Stack, System


async def storm(
    system: System,
    client: LoadClient,
    stack: Stack,
    dispatcher: Server,
    tabs: int,
    missed: int,
    concurrency: int,
) -> dict[str, Any]:
    users = system.users(stack, tabs, "-storm")
    first = await client.call(
        "connect", wait=900, urls=system.urls, users=users, secret=system.secret,
        concurrency=concurrency, timeout=120, last_seq=0,
    )  # fmt: skip
    await client.call("close_all", wait=300, timeout=120)
    await asyncio.sleep(2)  # the gateway lets every socket go (presence, unsubscribe)
    sent = 0
    for _ in range(missed):
        result = await dispatch.bulk(dispatcher, stack, users)
        sent += result["users"] if result["status"] == 201 else 0
    before = await client.call("stats")
    back = await client.call(
        "connect", wait=900, urls=system.urls, users=users, secret=system.secret,
        concurrency=concurrency, timeout=120, last_seq=0,
    )  # fmt: skip
    after = await client.call("stats")
    resumed = back["backlog"] - before["backlog"]
    await client.call("close_all", wait=300, timeout=120)
    return {
        "tabs": tabs,
        "missed_each": missed,
        "first_connect_seconds": first["seconds"],
        "sent": sent,
        "resumed": resumed,
        "lost": sent - resumed,
        "gaps": after["gaps"] - before["gaps"],  # a seq skipped within a tab's stream
        "duplicates": after["dups"] - before["dups"],
        "whole_in_seconds": back["seconds"],
        "failed": back["failed"],
        "failures": back["failures"],
        "concurrency": concurrency,
    }


async def one_user(
    system: System, client: LoadClient, stack: Stack, dispatcher: Server, count: int
) -> dict[str, Any]:
    user = system.users(stack, 1, "-deep")
    started = time.monotonic()
    sends = await dispatch.singles(dispatcher, stack, user, 32, 600, limit=count)
    fill = time.monotonic() - started
    before = (await client.call("stats"))["backlog"]
    back = await client.call(
        "connect", wait=300, urls=system.urls, users=user, secret=system.secret,
        concurrency=1, timeout=120, last_seq=0,
    )  # fmt: skip
    await client.call("close_all", wait=60, timeout=30)
    resumed = back["backlog"] - before
    return {
        "notifications": sends["sent"],
        "fill_seconds": fill,
        "resumed": resumed,
        "lost": sends["sent"] - resumed,
        "whole_in_seconds": back["seconds"],
        "failed": back["failed"],
    }
