"""Web push in Chromium: the demo registers the service worker (served at /tocsin-sw.js), a push
message delivered to it shows a notification unless an open tab already showed that one, and a
click opens the action URL and gets the notification marked read; the bell's preferences panel
saves, and "Turn on" stores this browser's subscription.

Chromium's own push service is out of reach here, so push messages go to the worker through the
DevTools protocol (`ServiceWorker.deliverPushMessage`). The protocol has no way to click a
notification, so the click calls the worker's own handler (`self.tocsin.click`, the function its
`notificationclick` listener runs). Outside a real click Chromium refuses `clients.openWindow`,
so these tests see the handler's fallback: an open tab of the site goes to the action URL.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import BrowserContext, Page, Worker, expect

from tests.browser.conftest import Servers, Tabs, _start, wait_connected
from tests.browser.helpers import bell


def _vapid_public_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    raw = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def push_servers(
    session_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    """A demo gateway with web push configured (TOCSIN_VAPID_PUBLIC_KEY) and a dispatcher."""
    env = {**session_env, "TOCSIN_VAPID_PUBLIC_KEY": _vapid_public_key()}
    servers = _start(env, tmp_path_factory.mktemp("push-servers"))
    yield servers
    servers.stop()


def open_demo(tabs: Tabs, servers: Servers, user: str) -> Page:
    """The demo page, once its service worker controls it."""
    tabs.context.grant_permissions(["notifications"], origin=servers.base)
    page = tabs.open(servers, user)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=10_000)
    return page


def service_worker(context: BrowserContext) -> Worker:
    for worker in context.service_workers:
        if worker.url.endswith("/tocsin-sw.js"):
            return worker
    return context.wait_for_event("serviceworker", timeout=10_000)


def deliver_push(page: Page, servers: Servers, payload: dict[str, Any]) -> None:
    """Hands a push message to the page's service worker, as Chromium's push service would."""
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    for _ in range(50):  # the registrations come as an event just after enable
        if any(not r["isDeleted"] for r in registrations):
            break
        page.wait_for_timeout(100)
    live = [r for r in registrations if not r["isDeleted"] and r["scopeURL"] == servers.base + "/"]
    assert live, f"no service worker registration for {servers.base}/: {registrations}"
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": servers.base,
            "registrationId": live[0]["registrationId"],
            "data": json.dumps(payload),
        },
    )
    cdp.detach()


def shown(worker: Worker) -> list[dict[str, Any]]:
    """The notifications the worker has on screen."""
    return cast(
        list[dict[str, Any]],
        worker.evaluate(
            """async () => (await self.registration.getNotifications()).map(n => ({
                 title: n.title, body: n.body, tag: n.tag, icon: n.icon, data: n.data }))"""
        ),
    )


def wait_shown(page: Page, worker: Worker, tag: str) -> dict[str, Any]:
    for _ in range(100):
        for notification in shown(worker):
            if notification["tag"] == tag:
                return notification
        page.wait_for_timeout(100)
    raise AssertionError(f"notification {tag} not shown within 10 s: {shown(worker)}")


def click(worker: Worker, tag: str) -> str:
    return cast(
        str,
        worker.evaluate(
            """async (tag) => {
                 const [n] = await self.registration.getNotifications({ tag });
                 return self.tocsin.click(n);
               }""",
            tag,
        ),
    )


def newest_id(page: Page, servers: Servers, user: str, title: str) -> str:
    servers.send(user, "message:received", title, "Are you free at 3pm?")
    page.wait_for_function(
        "(title) => window.tocsinDemo.client.getSnapshot()"
        ".notifications.some(n => n.title === title)",
        arg=title,
        timeout=5_000,
    )
    return cast(
        str,
        page.evaluate(
            "(title) => window.tocsinDemo.client.getSnapshot().notifications"
            ".find(n => n.title === title).id",
            title,
        ),
    )


def wait_unread(servers: Servers, user: str, expected: int, page: Page) -> None:
    for _ in range(50):
        if servers.unread_count(user) == expected:
            return
        page.wait_for_timeout(100)
    assert servers.unread_count(user) == expected


def test_the_demo_serves_and_registers_the_worker(
    push_servers: Servers, tabs: Tabs, user: str
) -> None:
    page = open_demo(tabs, push_servers, user)
    scope = page.evaluate("async () => (await navigator.serviceWorker.getRegistration()).scope")
    assert scope == push_servers.base + "/"
    assert service_worker(tabs.context).url == push_servers.base + "/tocsin-sw.js"


def test_a_push_is_shown_unless_an_open_tab_showed_it(
    push_servers: Servers, tabs: Tabs, user: str
) -> None:
    page = open_demo(tabs, push_servers, user)
    worker = service_worker(tabs.context)
    held = newest_id(page, push_servers, user, "Already in the tab")
    deliver_push(
        page,
        push_servers,
        {"id": held, "title": "Already in the tab", "body": "", "type": "message:received"},
    )
    fresh = str(uuid.uuid4())
    payload = {
        "id": fresh,
        "title": "New message from Ana",
        "body": "Are you free at 3pm?",
        "type": "message:received",
        "actionUrl": "/inbox/77",
    }
    deliver_push(page, push_servers, payload)
    notification = wait_shown(page, worker, fresh)
    assert notification["title"] == "New message from Ana"
    assert notification["body"] == "Are you free at 3pm?"
    assert notification["icon"] == push_servers.base + "/static/icons/message.png"
    assert notification["data"]["actionUrl"] == push_servers.base + "/inbox/77"
    page.wait_for_timeout(1_500)  # longer than the worker waits for a tab's answer
    assert [n["tag"] for n in shown(worker)] == [fresh]


def test_a_click_with_an_open_tab_marks_it_read_and_opens_the_url(
    push_servers: Servers, tabs: Tabs, user: str
) -> None:
    page = open_demo(tabs, push_servers, user)
    worker = service_worker(tabs.context)
    ident = newest_id(page, push_servers, user, "Read me from a push")
    assert push_servers.unread_count(user) == 1
    # The tab holds it, so a push of it would be skipped: show it as a background push would.
    action = f"/demo?user={user}&from=push"
    worker.evaluate(
        """([id, url]) => self.registration.showNotification("Read me from a push",
             { tag: id, data: { id, actionUrl: url, type: "message:received" } })""",
        [ident, push_servers.base + action],
    )
    wait_shown(page, worker, ident)
    assert click(worker, ident) == "page"
    wait_unread(push_servers, user, 0, page)
    page.wait_for_url(push_servers.base + action, timeout=10_000)
    wait_connected(page)
    assert shown(worker) == []


def test_a_click_with_no_tab_able_to_is_marked_read_by_the_next_page(
    push_servers: Servers, tabs: Tabs, user: str
) -> None:
    page = open_demo(tabs, push_servers, user)
    worker = service_worker(tabs.context)
    page.goto(push_servers.base + "/healthz")  # a page of the site without the Tocsin client
    push_servers.send(user, "task:assigned", "Prepare the Q4 report", "")
    feed = push_servers.unread_count(user)
    assert feed == 1
    ident = cast(
        str,
        page.evaluate(
            """async (token) => (await (await fetch("/v1/notifications",
                 { headers: { Authorization: "Bearer " + token } })).json()).notifications[0].id""",
            push_servers.token(user),
        ),
    )
    action = f"/demo?user={user}&from=push"
    deliver_push(
        page,
        push_servers,
        {
            "id": ident,
            "title": "Prepare the Q4 report",
            "body": "",
            "type": "task:assigned",
            "actionUrl": action,
        },
    )
    assert wait_shown(page, worker, ident)["icon"].endswith("/static/icons/task.png")
    assert click(worker, ident) == "remembered"
    page.wait_for_url(push_servers.base + action, timeout=10_000)
    wait_connected(page)
    wait_unread(push_servers, user, 0, page)


FAKE_SUBSCRIPTION = """(endpoint) => {
  // Chromium's push service is unreachable here: the browser's subscription is faked, and
  // everything after it (the POST to the gateway, the stored row) is real.
  let current = null;
  const make = (key) => ({
    endpoint,
    options: { applicationServerKey: key.buffer },
    toJSON: () => ({ endpoint, expirationTime: null, keys: {
      p256dh: "BOr9xOvW8l3pYzhpIBjqeUxLlm5k3tOKPRQi7OTUzUO1ywvn8-FQ8Sa0bYdM"
        + "vEl1aFSoxKDoBdTLrM_yXI93cFI",
      auth: "yAcCudA6Q-fZJtnJhZU5mA" } }),
    unsubscribe: async () => { current = null; return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    current = make(new Uint8Array(options.applicationServerKey));
    return current;
  };
  PushManager.prototype.getSubscription = async function () { return current; };
}"""


async def _owner(database_url: str, endpoint: str) -> str | None:
    conn = await asyncpg.connect(database_url)
    try:
        return cast(
            str | None,
            await conn.fetchval(
                "SELECT user_id FROM tocsin_push_subscriptions WHERE endpoint = $1", endpoint
            ),
        )
    finally:
        await conn.close()


def subscription_owner(database_url: str, endpoint: str) -> str | None:
    """From another thread: Playwright's sync API holds this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _owner(database_url, endpoint)).result(timeout=10)


def open_preferences(page: Page) -> None:
    bell(page).click()
    page.get_by_role("button", name="Notification preferences").click()
    expect(page.get_by_role("checkbox", name="Email: Messages")).to_be_visible()


def test_preferences_panel_saves_and_turns_push_on(
    push_servers: Servers, tabs: Tabs, user: str, screenshots: Path, database_url: str
) -> None:
    page = open_demo(tabs, push_servers, user)
    endpoint = f"https://push.example.net/wp/{uuid.uuid4().hex}"
    page.evaluate(FAKE_SUBSCRIPTION, endpoint)
    open_preferences(page)
    email_messages = page.get_by_role("checkbox", name="Email: Messages")
    expect(email_messages).to_be_checked()  # message:received emails by default
    expect(page.get_by_role("checkbox", name="Push: System alerts")).not_to_be_checked()
    email_messages.uncheck()
    page.get_by_label("Hold push and email during quiet hours").check()
    page.get_by_label("Time zone").select_option("Europe/Paris")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    answer = page.evaluate("() => window.tocsinDemo.client.preferences.get()")
    assert answer["channels"]["email"] == {"message:received": False}
    assert answer["quietHours"] == {"start": "22:00", "end": "07:00", "timeZone": "Europe/Paris"}

    expect(page.get_by_text("Push is off for this browser")).to_be_visible()
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("Push is on for this browser")).to_be_visible()
    assert subscription_owner(database_url, endpoint) == user
    page.screenshot(path=screenshots / "preferences-desktop.png")
    page.set_viewport_size({"width": 375, "height": 760})
    page.screenshot(path=screenshots / "preferences-375px.png")
    page.get_by_role("button", name="Turn off").click()
    expect(page.get_by_text("Push is off for this browser")).to_be_visible()
    assert subscription_owner(database_url, endpoint) is None


def test_preferences_panel_dark_at_375px_and_a_refused_time_zone(
    push_servers: Servers, tabs: Tabs, user: str, screenshots: Path
) -> None:
    tabs.context.grant_permissions(["notifications"], origin=push_servers.base)
    page = tabs.context.new_page()
    page.set_viewport_size({"width": 375, "height": 760})
    page.goto(f"{push_servers.base}/demo?user={user}&theme=dark")
    wait_connected(page)
    open_preferences(page)
    page.get_by_label("Hold push and email during quiet hours").check()
    zone = page.get_by_label("Time zone")
    # A zone this browser lists but the server's tz database lacks is refused by name.
    zone.evaluate("(el) => el.add(new Option('Mars/Olympus', 'Mars/Olympus', true, true))")
    zone.dispatch_event("change")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Not saved")).to_contain_text(
        "quietHours.timeZone"
    )
    expect(zone).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=screenshots / "preferences-dark-375px-error.png")
    page.keyboard.press("Escape")
    expect(page.locator(".tocsin-bell__panel")).to_be_hidden()
