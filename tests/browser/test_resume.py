"""Coming back: a reopened page, and a gateway restart under an open page."""

from __future__ import annotations

from collections import Counter

from playwright.sync_api import expect

from tests.browser.conftest import Servers, Tabs, wait_connected
from tests.browser.helpers import (
    TOAST,
    arrivals,
    badge,
    bell,
    items,
    record_arrivals,
    snapshot_seqs,
)


def test_a_reopened_page_shows_what_it_missed_as_one_batch(
    servers: Servers, tabs: Tabs, user: str
) -> None:
    page = tabs.open(servers, user)
    page.close()
    servers.send_many(user, ["Missed 1", "Missed 2", "Missed 3"], kind="mention:comment")

    page = tabs.open(servers, user)
    toast = page.locator(TOAST)
    expect(toast).to_have_count(1)
    expect(toast).to_contain_text("3 new notifications")
    expect(toast).to_have_attribute("data-count", "3")
    expect(badge(page)).to_have_text("3")
    bell(page).click()
    expect(items(page)).to_have_count(3)
    expect(items(page).first).to_contain_text("Missed 3")


def test_a_gateway_restart_resumes_with_no_duplicate_and_no_gap(
    own_servers: Servers, tabs: Tabs, user: str
) -> None:
    servers = own_servers
    page = tabs.open(servers, user)
    record_arrivals(page)
    servers.send_many(user, ["Live 1", "Live 2"])
    expect(badge(page)).to_have_text("2")

    assert servers.gateway is not None
    servers.gateway.terminate()
    expect(page.get_by_test_id("status")).not_to_have_attribute("data-status", "connected")
    servers.send_many(user, ["While down 3", "While down 4", "While down 5"])
    servers.start_gateway()

    wait_connected(page, timeout=30_000)
    expect(badge(page)).to_have_text("5")
    servers.send(user, "message:received", "After restart 6", "")
    expect(badge(page)).to_have_text("6")

    assert snapshot_seqs(page) == [6, 5, 4, 3, 2, 1]
    got = arrivals(page)
    seqs = [seq for seq, _ in got]
    assert Counter(seqs).most_common(1)[0][1] == 1, f"duplicate arrival: {got}"
    assert seqs == [1, 2, 3, 4, 5, 6], f"gap or disorder: {got}"
    assert dict(got)[3] == "batch" and dict(got)[6] == "live"
    bell(page).click()
    expect(items(page)).to_have_count(6)


def test_a_killed_gateway_is_survived_too(own_servers: Servers, tabs: Tabs, user: str) -> None:
    servers = own_servers
    page = tabs.open(servers, user)
    record_arrivals(page)
    servers.send(user, "message:received", "Before 1", "")
    expect(badge(page)).to_have_text("1")
    assert servers.gateway is not None
    servers.gateway.kill()
    servers.send(user, "message:received", "While dead 2", "")
    servers.start_gateway()
    wait_connected(page, timeout=30_000)
    expect(badge(page)).to_have_text("2")
    assert [seq for seq, _ in arrivals(page)] == [1, 2]
