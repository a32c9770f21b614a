"""The bell and toasts in a real Chromium against a real gateway and dispatcher."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import FloatRect, Page, expect

from tests.browser.conftest import Servers, Tabs
from tests.browser.helpers import BELL, ITEM, TOAST, badge, bell, items


def scroll_to_end(page: Page, total: int) -> None:
    """Scrolls the dropdown like a user until the feed says there is nothing older."""
    listing = page.locator(".tocsin-bell__list")
    footer = page.locator(".tocsin-bell__footer")
    shown = items(page).count()
    for _ in range(total // 10 + 10):
        if footer.text_content() == "No older notifications":
            break
        listing.hover()
        page.mouse.wheel(0, 20_000)
        page.wait_for_timeout(150)
        now = items(page).count()
        assert now >= shown, "items disappeared while scrolling"
        shown = now
    expect(footer).to_have_text("No older notifications")
    expect(items(page)).to_have_count(total)


def test_a_sent_notification_shows_a_toast_and_badge_within_a_second(
    servers: Servers, tabs: Tabs, user: str
) -> None:
    page = tabs.open(servers, user)
    expect(badge(page)).to_be_hidden()

    servers.send(
        user, "order:status_changed", "Order #1042 shipped", "On its way", action_url="/o/1"
    )
    toast = page.locator(TOAST).filter(has_text="Order #1042 shipped")
    expect(toast).to_be_visible(timeout=1_000)
    expect(badge(page)).to_have_text("1", timeout=1_000)
    expect(toast.locator(".tocsin-toast__icon")).to_have_text("📦")
    expect(bell(page)).to_have_attribute("aria-label", "Notifications, 1 unread")
    expect(page.locator('.tocsin-toaster [aria-live="polite"]')).to_contain_text(
        "Order #1042 shipped"
    )
    # 5 s default duration
    expect(toast).to_be_hidden(timeout=7_000)


def test_each_type_has_its_icon(servers: Servers, tabs: Tabs, user: str) -> None:
    page = tabs.open(servers, user)
    icons = {
        "order:status_changed": "📦",
        "message:received": "💬",
        "mention:comment": "@",
        "task:assigned": "✅",
        "payment:processed": "💳",
        "system:alert": "⚠️",
        "invoice:overdue": "🔔",
    }
    for kind in icons:
        servers.send(user, kind, f"A {kind}", "")
    expect(badge(page)).to_have_text("7", timeout=5_000)
    bell(page).click()
    for kind, icon in icons.items():
        item = page.locator(ITEM).filter(has_text=f"A {kind}")
        expect(item.locator(".tocsin-item__icon")).to_have_text(icon)


def test_120_unread_show_99_plus_and_the_dropdown_pages_through_them(
    servers: Servers, tabs: Tabs, user: str
) -> None:
    servers.send_many(user, [f"Message {i:03d}" for i in range(1, 121)])
    page = tabs.open(servers, user)
    expect(badge(page)).to_have_text("99+")
    expect(bell(page)).to_have_attribute("aria-label", "Notifications, 120 unread")

    bell(page).click()
    expect(items(page)).to_have_count(20)
    expect(items(page).first).to_contain_text("Message 120")
    expect(items(page).nth(19)).to_contain_text("Message 101")

    scroll_to_end(page, 120)
    expect(items(page).last).to_contain_text("Message 001")
    # opening the bell marked them seen, not read
    expect(badge(page)).to_have_text("99+")


def test_older_pages_come_from_the_feed(servers: Servers, tabs: Tabs, user: str) -> None:
    """A second browser starts with only the newest page; scrolling fetches older ones by cursor."""
    servers.send_many(user, [f"Old {i:02d}" for i in range(1, 46)])
    first = tabs.open(servers, user)  # takes the undelivered backlog and acks it
    expect(badge(first)).to_have_text("45")
    first.wait_for_timeout(1_000)  # its cumulative ack reaches the server
    first.close()
    fresh = tabs.context.browser
    assert fresh is not None
    other = fresh.new_context()
    try:
        page = other.new_page()
        page.goto(f"{servers.base}/demo?user={user}")
        expect(page.get_by_test_id("status")).to_have_attribute("data-status", "connected")
        expect(badge(page)).to_have_text("45")
        bell(page).click()
        expect(items(page)).to_have_count(20)
        scroll_to_end(page, 45)
        expect(items(page).last).to_contain_text("Old 01")
    finally:
        other.close()


def test_clicking_a_toast_navigates_to_its_action_url_and_marks_it_read(
    servers: Servers, tabs: Tabs, user: str
) -> None:
    page = tabs.open(servers, user)
    target = f"/demo?user={user}&landed=1"
    servers.send(user, "message:received", "New message from Ana", "Free at 3?", action_url=target)
    toast = page.locator(TOAST).filter(has_text="New message from Ana")
    expect(toast).to_be_visible()
    toast.locator(".tocsin-toast__main").click()
    page.wait_for_url(re.compile(r"landed=1"))
    deadline = time.monotonic() + 5
    while servers.unread_count(user) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert servers.unread_count(user) == 0
    expect(page.get_by_test_id("status")).to_have_attribute("data-status", "connected")
    expect(badge(page)).to_be_hidden()


def test_keyboard_only(servers: Servers, tabs: Tabs, user: str) -> None:
    page = tabs.open(servers, user)
    servers.send_many(user, ["First", "Second", "Third"])
    expect(badge(page)).to_have_text("3")

    page.locator("body").focus()
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement?.matches('button.tocsin-bell__button')"):
            break
    else:
        raise AssertionError("Tab never reached the bell")

    page.keyboard.press("Enter")
    expect(bell(page)).to_have_attribute("aria-expanded", "true")
    expect(page.locator(f"{ITEM} .tocsin-item__main").first).to_be_focused()
    expect(page.locator(ITEM).first).to_contain_text("Third")

    page.keyboard.press("ArrowDown")
    second = page.locator(ITEM).nth(1)
    expect(second.locator(".tocsin-item__main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(second.locator(".tocsin-item__read")).to_be_focused()
    page.keyboard.press("Enter")
    expect(badge(page)).to_have_text("2")
    expect(second).not_to_have_class(re.compile(r"tocsin-item--unread"))
    expect(second.locator(".tocsin-item__main")).to_be_focused()

    page.keyboard.press("Escape")
    expect(page.locator(".tocsin-bell__panel")).to_be_hidden()
    expect(page.locator(BELL)).to_be_focused()
    expect(bell(page)).to_have_attribute("aria-label", "Notifications, 2 unread")

    # Enter again, Tab to "Mark all read" is reachable too
    page.keyboard.press("Enter")
    page.keyboard.press("Shift+Tab")
    expect(page.locator(".tocsin-bell__mark-all")).to_be_focused()
    page.keyboard.press("Enter")
    expect(badge(page)).to_be_hidden()
    page.keyboard.press("Escape")
    expect(page.locator(BELL)).to_be_focused()


def test_screenshots(servers: Servers, tabs: Tabs, user: str, screenshots: Path) -> None:
    page = tabs.open(servers, user, "&theme=light")
    servers.send(user, "order:status_changed", "Order #1042 shipped", "Your order is on its way.")
    servers.send(user, "mention:comment", "Sam mentioned you", "@you can you review this?")
    servers.send(user, "system:alert", "Scheduled maintenance", "Tonight 02:00-02:30 UTC")
    expect(badge(page)).to_have_text("3")
    toast = page.locator(TOAST).last
    expect(toast).to_be_visible()
    page.wait_for_timeout(400)  # let the slide-in finish
    page.screenshot(path=screenshots / "toast-light.png")
    page.locator(".tocsin-toast__close").evaluate_all("els => els.forEach(e => e.click())")

    header: FloatRect = {"x": 500, "y": 0, "width": 600, "height": 600}
    page.screenshot(path=screenshots / "bell-closed-light.png", clip=header)
    bell(page).click()
    expect(items(page)).to_have_count(3)
    page.locator(f"{ITEM} .tocsin-item__read").first.click()
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    page.screenshot(path=screenshots / "bell-open-light.png", clip=header)

    page.get_by_test_id("theme").select_option("dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.wait_for_timeout(200)
    page.screenshot(path=screenshots / "bell-open-dark.png", clip=header)
    bell(page).click()
    page.screenshot(path=screenshots / "bell-closed-dark.png", clip=header)
    servers.send(user, "payment:processed", "Payment received", "$49.00 from ACME Corp")
    expect(page.locator(TOAST)).to_be_visible()
    page.wait_for_timeout(400)
    page.screenshot(path=screenshots / "toast-dark.png")

    empty_user = user + "-empty"
    empty = tabs.open(servers, empty_user, "&theme=light")
    bell(empty).click()
    expect(empty.locator(".tocsin-bell__empty")).to_be_visible()
    empty.wait_for_timeout(300)  # the panel's fade-in
    empty.screenshot(path=screenshots / "bell-empty-light.png", clip=header)


def panel_background(page: Page) -> str:
    return str(
        page.locator(".tocsin-bell__panel").evaluate("el => getComputedStyle(el).backgroundColor")
    )


def test_theme_follows_the_system_and_data_theme_overrides_it(
    servers: Servers, tabs: Tabs, user: str
) -> None:
    page = tabs.open(servers, user)
    bell(page).click()
    page.emulate_media(color_scheme="light")
    light = panel_background(page)
    page.emulate_media(color_scheme="dark")
    dark = panel_background(page)
    assert light == "rgb(255, 255, 255)"
    assert dark != light
    page.evaluate("() => document.documentElement.setAttribute('data-theme', 'light')")
    assert panel_background(page) == light  # the override beats prefers-color-scheme
    page.emulate_media(color_scheme="light")
    page.evaluate("() => document.documentElement.setAttribute('data-theme', 'dark')")
    assert panel_background(page) == dark


def test_reduced_motion_turns_animations_off(servers: Servers, tabs: Tabs, user: str) -> None:
    page = tabs.open(servers, user)
    page.emulate_media(reduced_motion="reduce")
    servers.send(user, "task:assigned", "Quietly", "")
    toast = page.locator(TOAST)
    expect(toast).to_be_visible()
    assert toast.evaluate("el => getComputedStyle(el).animationName") == "none"
    page.emulate_media(reduced_motion="no-preference")
    servers.send(user, "task:assigned", "With motion", "")
    moving = page.locator(TOAST).filter(has_text="With motion")
    expect(moving).to_be_visible()
    assert moving.evaluate("el => getComputedStyle(el).animationName") == "tocsin-slide"
