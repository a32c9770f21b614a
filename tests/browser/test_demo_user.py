"""The demo page's user comes from `?user=`: the default is the one the README's Quick start
sends to, the page says who is signed in, and a bad id is refused with a message."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Servers, Tabs, wait_connected
from tests.browser.helpers import badge

DEFAULT_USER = "demo"  # gateway/demo.py; the README's Quick start sends to it


def test_the_page_is_for_the_user_in_the_url(
    servers: Servers, tabs: Tabs, screenshots: Path
) -> None:
    page = tabs.open(servers, "42")
    signed_in = page.get_by_test_id("signed-in")
    expect(signed_in).to_have_text("Signed in as 42 — open /demo?user=43 for another user")
    servers.send("42", "message:received", "New message from Ana", "Are you free at 3pm?")
    expect(badge(page)).to_have_text("1", timeout=2_000)
    page.wait_for_timeout(400)  # the toast's entrance animation
    page.screenshot(path=screenshots / "demo-user-42-desktop.png")
    page.set_viewport_size({"width": 375, "height": 760})
    page.screenshot(path=screenshots / "demo-user-42-375px.png")


def test_without_a_user_the_page_is_for_the_default_user(servers: Servers, tabs: Tabs) -> None:
    page = tabs.context.new_page()
    page.goto(f"{servers.base}/demo")
    wait_connected(page)
    expect(page.get_by_test_id("signed-in")).to_contain_text(f"Signed in as {DEFAULT_USER} —")
    link = page.get_by_test_id("signed-in").get_by_role("link")
    expect(link).to_have_attribute("href", "/demo?user=42")


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("", "user must be 1 to 128 characters, got 0"),
        ("x" * 129, "user must be 1 to 128 characters, got 129"),
        ("demo\n", "user must be printable text"),
    ],
    ids=["empty", "too-long", "control-character"],
)
def test_a_bad_user_id_is_refused_with_a_message(
    servers: Servers, tabs: Tabs, screenshots: Path, user: str, message: str
) -> None:
    page = tabs.context.new_page()
    page.set_viewport_size({"width": 375, "height": 500})
    page.goto(f"{servers.base}/demo?user={quote(user)}")
    expect(page.get_by_test_id("config-error")).to_contain_text(message)
    expect(page.get_by_test_id("status")).to_have_count(0)
    page.screenshot(path=screenshots / f"demo-bad-user-{len(user)}-375px.png")
    answer = httpx.post(
        f"{servers.base}/demo/send", json={"type": "system:alert", "user": user}, timeout=5
    )
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("validation_error", "user")
    assert error["message"].startswith(message)
