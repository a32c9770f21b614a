"""dispatcher/fastpath.py answers POST /v1/notifications exactly as the Starlette route
behind it would: the same status, body and headers for the same good and bad requests, the
same request-duration series, the same log lines with the request id. Two dispatchers on real
sockets against the real PostgreSQL and Redis: the app as served, and the same app with every
request sent through Starlette."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from dispatcher import fastpath, routes
from dispatcher.app import create_app
from dispatcher.metrics import REGISTRY
from shared import logs
from shared.config import DispatcherSettings
from tests.dispatcher.support import AUTH, MAX_BODY_BYTES, PRODUCER_KEY, new_user, serve
from tests.support.services import free_port

PATH = "/v1/notifications"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


class StarletteOnly:
    """The dispatcher's app with its send served by the Starlette route, as before."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await Starlette.__call__(self.app, scope, receive, send)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]  # in order, Date left out
    body: Any

    @property
    def request_id(self) -> str:
        return dict(self.headers)["x-request-id"]


@dataclass(frozen=True)
class Pair:
    fast: str
    starlette: str


def _pair(settings: DispatcherSettings) -> Iterator[Pair]:
    with serve(create_app(settings)) as fast, serve(StarletteOnly(create_app(settings))) as slow:
        yield Pair(fast, slow)


@pytest.fixture(scope="module")
def module_settings(database_url: str, redis_url: str) -> DispatcherSettings:
    from tests.dispatcher.support import make_settings

    return make_settings(database_url, redis_url)


@pytest.fixture(scope="module")
def pair(module_settings: DispatcherSettings) -> Iterator[Pair]:
    yield from _pair(module_settings)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def _masked(body: bytes) -> Any:
    """The JSON body with what differs between two good sends (ids, users) masked."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    for item in doc.get("notifications", []) if isinstance(doc, dict) else []:
        item["id"] = item["user_id"] = "*"
    return doc


async def ask(http: httpx.AsyncClient, base: str, **request: Any) -> Answer:
    method = request.pop("method", "POST")
    response = await http.request(method, base + PATH, **request)
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "date"]
    return Answer(response.status_code, headers, _masked(response.content))


def same(fast: Answer, slow: Answer, generated_id: bool = True) -> None:
    """Equal answers; a request id each made up is compared by its form only."""
    if generated_id:
        assert GENERATED_ID.fullmatch(fast.request_id), fast.request_id
        assert GENERATED_ID.fullmatch(slow.request_id), slow.request_id
        fast = Answer(fast.status, [h for h in fast.headers if h[0] != "x-request-id"], fast.body)
        slow = Answer(slow.status, [h for h in slow.headers if h[0] != "x-request-id"], slow.body)
    assert fast == slow


def note(user: str, **more: Any) -> dict[str, Any]:
    return {"user_id": user, "type": "message:received", "title": "Hi", "body": "Hello", **more}


Build = Callable[[], dict[str, Any]]


async def _chunks() -> AsyncIterator[bytes]:
    """A body past the limit, chunked: no Content-Length to refuse it by."""
    yield b"x" * MAX_BODY_BYTES
    yield b"x"


BAD: list[tuple[str, Build]] = [
    ("no-key", lambda: {"json": note(new_user())}),
    ("not-bearer", lambda: {"json": note(new_user()), "headers": {"Authorization": "Basic x"}}),
    ("wrong-key", lambda: {"json": note(new_user()), "headers": {"Authorization": "Bearer no"}}),
    ("invalid-json", lambda: {"content": b"{not json", "headers": AUTH}),
    ("empty-body", lambda: {"content": b"", "headers": AUTH}),
    ("not-an-object", lambda: {"json": [1, 2], "headers": AUTH}),
    ("bad-fields", lambda: {"json": {"user_id": 7, "type": "X", "extra": 1}, "headers": AUTH}),
    ("both-recipients", lambda: {"json": {**note("a"), "user_ids": ["b"]}, "headers": AUTH}),
    (
        "declared-too-large",
        lambda: {"content": b"x" * (MAX_BODY_BYTES + 1), "headers": AUTH},
    ),
    ("streamed-too-large", lambda: {"content": _chunks(), "headers": AUTH}),
    ("get-is-405", lambda: {"method": "GET", "headers": AUTH}),
]


@pytest.mark.parametrize("build", [b for _, b in BAD], ids=[name for name, _ in BAD])
async def test_refusals_are_answered_alike(
    pair: Pair, http: httpx.AsyncClient, build: Build
) -> None:
    fast = await ask(http, pair.fast, **build())
    slow = await ask(http, pair.starlette, **build())
    assert fast.status >= 400
    same(fast, slow)


async def test_sends_and_replays_are_answered_alike(pair: Pair, http: httpx.AsyncClient) -> None:
    for base_user in ("one", "two"):
        users = {base: f"{new_user()}-{base_user}" for base in (pair.fast, pair.starlette)}
        fast, slow = [
            await ask(http, base, json=note(users[base], idempotency_key="k"), headers=AUTH)
            for base in (pair.fast, pair.starlette)
        ]
        assert fast.status == 201
        same(fast, slow)
        replays = [
            await ask(http, base, json=note(users[base], idempotency_key="k"), headers=AUTH)
            for base in (pair.fast, pair.starlette)
        ]
        assert replays[0].status == 200
        assert replays[0].body["notifications"][0]["created"] is False
        same(*replays)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Request-ID": "order-7/retry+1"},
        {"X-Request-ID": "bad id<script>" + "x" * 100},  # cleaned and cut to 64
        [("X-Request-ID", "first"), ("X-Request-ID", "second")],
        [("Authorization", f"Bearer {PRODUCER_KEY}"), ("Authorization", "Bearer other")],
        [("Authorization", "Bearer other"), ("Authorization", f"Bearer {PRODUCER_KEY}")],
    ],
    ids=["given", "cleaned", "two-ids", "good-key-first", "bad-key-first"],
)
async def test_headers_are_read_alike(pair: Pair, http: httpx.AsyncClient, headers: Any) -> None:
    given = list(headers.items()) if isinstance(headers, dict) else headers
    if not any(name == "Authorization" for name, _ in given):
        given += list(AUTH.items())
    fast, slow = [
        await ask(http, base, json=note(new_user()), headers=given)
        for base in (pair.fast, pair.starlette)
    ]
    same(fast, slow, generated_id="X-Request-ID" not in dict(given))


def _duration_count(status: int) -> float:
    labels = {"route": PATH, "method": "POST", "status": str(status)}
    value = REGISTRY.get_sample_value("tocsin_dispatcher_request_duration_seconds_count", labels)
    return value or 0.0


@pytest.mark.parametrize("status", [201, 401, 422])
async def test_each_send_is_timed_under_the_route_template(
    pair: Pair, http: httpx.AsyncClient, status: int
) -> None:
    request: dict[str, Any] = {"json": note(new_user()), "headers": AUTH}
    if status == 401:
        request["headers"] = {}
    if status == 422:
        request["json"] = {"title": "no recipient"}
    for base in (pair.fast, pair.starlette):
        before = _duration_count(status)
        assert (await ask(http, base, **request)).status == status
        assert _duration_count(status) == before + 1


def test_only_the_send_takes_the_fast_path() -> None:
    def scope(**over: Any) -> dict[str, Any]:
        return {"type": "http", "method": "POST", "path": PATH, "root_path": "", **over}

    assert fastpath.handles(scope())
    assert not fastpath.handles(scope(method="GET"))
    assert not fastpath.handles(scope(path=PATH + "/"))
    assert not fastpath.handles(scope(path="/v1/users/u/notifications"))
    assert not fastpath.handles(scope(root_path="/tocsin", path="/tocsin" + PATH))
    assert not fastpath.handles(scope(type="lifespan"))


@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (RuntimeError("a bug"), 500, "internal_error"),
        (RedisConnectionError("Error 111 connecting"), 503, "unavailable"),
    ],
)
async def test_an_escaped_error_is_answered_alike(
    pair: Pair,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    raised: Exception,
    status: int,
    code: str,
) -> None:
    """A bug past validation (500, X-Request-ID kept), a backend error nothing caught (503)."""

    def fail(*args: Any) -> Any:
        raise raised

    monkeypatch.setattr(routes, "fallback_request", fail)
    answers = []
    for base in (pair.fast, pair.starlette):
        before = _duration_count(status)
        answers.append(
            await ask(http, base, json=note(new_user()), headers={**AUTH, "X-Request-ID": "r-1"})
        )
        assert _duration_count(status) == before + 1
    fast, slow = answers
    assert (fast.status, fast.body["error"]["code"]) == (status, code)
    same(fast, slow, generated_id=False)


async def test_store_down_is_503_logged_with_the_request_id(
    redis_url: str, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.dispatcher.support import make_settings

    dead_store = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    caplog.handler.addFilter(logs.ContextFilter())
    caplog.set_level(logging.WARNING, logger="tocsin.dispatcher")
    answers = []
    for pair in _pair(make_settings(dead_store, redis_url)):
        for base, ident in ((pair.fast, "down-fast"), (pair.starlette, "down-slow")):
            headers = {**AUTH, "X-Request-ID": ident}
            answers.append(await ask(http, base, json=note(new_user()), headers=headers))
    fast, slow = answers
    assert fast.status == 503
    assert fast.body["error"]["code"] == "store_unavailable"
    assert fast.request_id == "down-fast"
    assert [h for h in fast.headers if h[0] != "x-request-id"] == [
        h for h in slow.headers if h[0] != "x-request-id"
    ]
    assert fast.body == slow.body
    refused = [
        getattr(r, "request_id", None)
        for r in caplog.records
        if r.getMessage().startswith("store unavailable")
    ]
    assert "down-fast" in refused
    assert "down-slow" in refused
