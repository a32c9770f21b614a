"""Real-browser fixtures: a gateway (demo mode) and a dispatcher as processes, Debian's Chromium
driven by Playwright (never a downloaded browser), one fresh browser context per test."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from playwright.sync_api import expect as pw_expect

import tocsin_client
from tests.conftest import PRODUCER_KEY
from tests.support.processes import ROOT, ServerProcess, spawn
from tests.support.services import free_port

CHROMIUM = os.environ.get("TOCSIN_CHROMIUM", "/usr/bin/chromium")
STATIC_DIR = ROOT / "gateway" / "static"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything here is marked `browser`, so `-m "not browser"` leaves it out."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class Servers:
    """A demo-mode gateway and a dispatcher; the gateway can be restarted on the same port."""

    env: dict[str, str]
    log_dir: Path
    gateway_port: int = field(default_factory=free_port)
    dispatcher_port: int = field(default_factory=free_port)
    gateway: ServerProcess | None = None
    dispatcher: ServerProcess | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def dispatcher_url(self) -> str:
        return f"http://127.0.0.1:{self.dispatcher_port}"

    def start(self) -> Servers:
        self.dispatcher = spawn(
            ["dispatcher"],
            {**self.env, "TOCSIN_DISPATCHER_PORT": str(self.dispatcher_port)},
            self.dispatcher_port,
            self.log_dir,
        )
        self.start_gateway()
        return self

    def start_gateway(self) -> None:
        env = {
            **self.env,
            "TOCSIN_GATEWAY_PORT": str(self.gateway_port),
            "TOCSIN_DEMO": "true",
            "TOCSIN_DISPATCHER_URL": self.dispatcher_url,
            "TOCSIN_ALLOWED_ORIGINS": self.base,
        }
        self.gateway = spawn(["gateway"], env, self.gateway_port, self.log_dir)

    def stop(self) -> None:
        for server in (self.gateway, self.dispatcher):
            if server is not None:
                server.terminate()

    def connections(self) -> int:
        """Open sockets on the gateway, from its Prometheus gauge."""
        text = httpx.get(self.base + "/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            match = re.match(r"^tocsin_gateway_connections(\{[^}]*\})?\s+(\S+)$", line)
            if match:
                total += float(match.group(2))
        return int(total)

    def send(
        self, user: str, kind: str, title: str, body: str = "", action_url: str | None = None
    ) -> None:
        with tocsin_client.Client(self.dispatcher_url, PRODUCER_KEY) as client:
            client.send(user, kind, title, body, action_url=action_url)

    def send_many(self, user: str, titles: list[str], kind: str = "message:received") -> None:
        with tocsin_client.Client(self.dispatcher_url, PRODUCER_KEY) as client:
            for title in titles:
                client.send(user, kind, title, "")

    def token(self, user: str) -> str:
        config = httpx.get(self.base + "/demo/config", params={"user": user}, timeout=5).json()
        return str(config["token"])

    def unread_count(self, user: str) -> int:
        answer = httpx.get(
            self.base + "/v1/notifications/unread-count",
            headers={"Authorization": f"Bearer {self.token(user)}"},
            timeout=5,
        )
        answer.raise_for_status()
        return int(answer.json()["unreadCount"])


def _check_built() -> None:
    if not (STATIC_DIR / "demo.html").is_file() or not (STATIC_DIR / "demo.js").is_file():
        pytest.fail(
            "browser files not built: run `npm ci && npm run build` in web/ (or `make install`)"
        )


def _start(env_base: dict[str, str], log_dir: Path) -> Servers:
    _check_built()
    return Servers(env=dict(env_base), log_dir=log_dir).start()


@pytest.fixture(scope="session")
def session_env(database_url: str, redis_url: str) -> dict[str, str]:
    # Same as tests/conftest.py's env_base, which is function-scoped. The servers, Playwright
    # and the browser are package-scoped: they stop before the async test packages run.
    from tests.conftest import JWT_SECRET

    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOCSIN_PRODUCER_KEYS": PRODUCER_KEY,
        "TOCSIN_JWT_SECRET": JWT_SECRET,
    }


@pytest.fixture(scope="package")
def servers(
    session_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    servers = _start(session_env, tmp_path_factory.mktemp("browser-servers"))
    yield servers
    servers.stop()


@pytest.fixture
def own_servers(env_base: dict[str, str], tmp_path: Path) -> Iterator[Servers]:
    """A private gateway and dispatcher, for tests that restart them."""
    servers = _start(env_base, tmp_path)
    yield servers
    servers.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set TOCSIN_CHROMIUM)")
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    yield browser
    browser.close()


@dataclass
class Tabs:
    """Pages of one browser context (one browser profile: tabs share locks and channels)."""

    context: BrowserContext
    errors: list[str] = field(default_factory=list)

    def open(self, servers: Servers, user: str, query: str = "") -> Page:
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(f"{servers.base}/demo?user={user}{query}")
        wait_connected(page)
        return page


def wait_connected(page: Page, timeout: float = 15_000) -> None:
    pw_expect(page.get_by_test_id("status")).to_have_attribute(
        "data-status", "connected", timeout=timeout
    )


@pytest.fixture
def tabs(browser: Browser) -> Iterator[Tabs]:
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    tabs = Tabs(context)
    yield tabs
    context.close()
    assert tabs.errors == [], f"errors in the page: {tabs.errors}"


@pytest.fixture
def user() -> str:
    return f"browser-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="package")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
