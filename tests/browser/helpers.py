"""Locators and page probes shared by the browser tests."""

from __future__ import annotations

from typing import Any, cast

from playwright.sync_api import Locator, Page

BADGE = ".tocsin-bell__badge"
BELL = "button.tocsin-bell__button"
ITEM = ".tocsin-item"
TOAST = ".tocsin-toast"


def badge(page: Page) -> Locator:
    return page.locator(BADGE).first


def bell(page: Page) -> Locator:
    return page.locator(BELL).first


def items(page: Page) -> Locator:
    return page.locator(ITEM)


def snapshot_seqs(page: Page) -> list[int]:
    """Seqs the page's client holds, newest first."""
    return cast(
        list[int],
        page.evaluate("() => window.tocsinDemo.client.getSnapshot().notifications.map(n => n.seq)"),
    )


def is_leader(page: Page) -> bool:
    return bool(page.evaluate("() => window.tocsinDemo.client.getSnapshot().isLeader"))


def record_arrivals(page: Page) -> None:
    """Keeps every notification the client reports as new to the tab, in order."""
    page.evaluate(
        """() => {
          window.__arrivals = [];
          window.tocsinDemo.client.onNotifications(
            (list, source) => window.__arrivals.push(...list.map(n => [n.seq, source])));
        }"""
    )


def arrivals(page: Page) -> list[tuple[int, str]]:
    raw = cast(list[list[Any]], page.evaluate("() => window.__arrivals"))
    return [(int(seq), str(source)) for seq, source in raw]
