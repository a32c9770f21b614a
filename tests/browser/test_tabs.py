"""Several tabs of one user: one socket between them, shared read state, leader hand-over."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.browser.conftest import Servers, Tabs, wait_connected
from tests.browser.helpers import ITEM, badge, bell, is_leader, snapshot_seqs


def wait_connections(servers: Servers, expected: int, timeout: float = 10) -> None:
    """Waits until the gateway's gauge shows `expected` sockets and stays there for a second."""
    deadline = time.monotonic() + timeout
    stable_since: float | None = None
    seen = servers.connections()
    while time.monotonic() < deadline:
        seen = servers.connections()
        if seen == expected:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 1.0:
                return
        else:
            stable_since = None
        time.sleep(0.1)
    raise AssertionError(f"gateway holds {seen} sockets, expected {expected}")


def idle_connections(servers: Servers) -> int:
    """The gauge once sockets from earlier tests have finished closing."""
    previous = -1
    for _ in range(50):
        now = servers.connections()
        if now == previous:
            return now
        previous = now
        time.sleep(0.2)
    return previous


def test_marking_read_in_one_tab_updates_the_other(servers: Servers, tabs: Tabs, user: str) -> None:
    a = tabs.open(servers, user)
    b = tabs.open(servers, user)
    servers.send_many(user, ["One", "Two", "Three"])
    expect(badge(a)).to_have_text("3")
    expect(badge(b)).to_have_text("3")

    bell(a).click()
    a.locator(ITEM).filter(has_text="Two").locator(".tocsin-item__read").click()
    expect(badge(a)).to_have_text("2")
    expect(badge(b)).to_have_text("2", timeout=2_000)
    bell(b).click()
    expect(b.locator(ITEM).filter(has_text="Two")).not_to_have_class(
        re.compile(r"tocsin-item--unread")
    )

    a.locator(".tocsin-bell__mark-all").click()
    expect(badge(a)).to_be_hidden()
    expect(badge(b)).to_be_hidden(timeout=2_000)
    expect(b.locator(".tocsin-item--unread")).to_have_count(0)
    # the server agrees, and no late frame brings the badge back
    assert servers.unread_count(user) == 0
    b.wait_for_timeout(1_000)
    expect(badge(b)).to_be_hidden()


def test_three_tabs_share_one_socket_and_survive_the_leader_closing(
    servers: Servers, tabs: Tabs, user: str
) -> None:
    baseline = idle_connections(servers)
    pages = [tabs.open(servers, user) for _ in range(3)]
    wait_connections(servers, baseline + 1)
    leaders = [page for page in pages if is_leader(page)]
    assert len(leaders) == 1, "exactly one tab holds the socket"

    servers.send(user, "task:assigned", "Before the hand-over", "")
    for page in pages:
        expect(badge(page)).to_have_text("1")

    leader = leaders[0]
    survivors: list[Page] = [page for page in pages if page is not leader]
    leader.close()
    servers.send(user, "task:assigned", "During the hand-over 1", "")
    servers.send(user, "task:assigned", "During the hand-over 2", "")

    for page in survivors:
        wait_connected(page)
        expect(badge(page)).to_have_text("3")
    servers.send(user, "task:assigned", "After the hand-over", "")
    for page in survivors:
        expect(badge(page)).to_have_text("4")
        assert snapshot_seqs(page) == [4, 3, 2, 1]
    assert sum(is_leader(page) for page in survivors) == 1
    wait_connections(servers, baseline + 1)


def test_a_late_tab_joins_the_existing_socket_with_the_current_state(
    servers: Servers, tabs: Tabs, user: str
) -> None:
    baseline = idle_connections(servers)
    first = tabs.open(servers, user)
    servers.send_many(user, ["Alpha", "Beta"])
    expect(badge(first)).to_have_text("2")
    late = tabs.open(servers, user)
    expect(badge(late)).to_have_text("2")
    assert not is_leader(late)
    wait_connections(servers, baseline + 1)
