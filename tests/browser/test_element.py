"""<tocsin-bell>: the same bell and toasts without React."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import Servers, Tabs


def test_the_web_component_shows_toasts_and_badge(servers: Servers, tabs: Tabs, user: str) -> None:
    page = tabs.context.new_page()
    page.goto(f"{servers.base}/demo?user={user}&ui=element")
    element = page.locator("tocsin-bell")
    # Playwright's CSS engine pierces the open shadow root.
    expect(element.locator(".tocsin-bell")).to_have_attribute("data-status", "connected")
    servers.send(user, "payment:processed", "Payment received", "$49.00 from ACME Corp")
    expect(element.locator(".tocsin-toast")).to_contain_text("Payment received")
    expect(element.locator(".tocsin-toast__icon")).to_have_text("💳")
    expect(element.locator(".tocsin-bell__badge")).to_have_text("1")
    button = element.locator("button.tocsin-bell__button")
    expect(button).to_have_attribute("aria-label", "Notifications, 1 unread")
    button.click()
    expect(element.locator(".tocsin-item")).to_have_count(1)
    element.locator(".tocsin-bell__mark-all").click()
    expect(element.locator(".tocsin-bell__badge")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(element.locator(".tocsin-bell__panel")).to_be_hidden()
