"""A dispatcher served on a real socket against the shared PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from dispatcher.app import create_app
from shared.config import DispatcherSettings
from tests.dispatcher.support import AUTH, make_settings, serve


@pytest.fixture
def settings(database_url: str, redis_url: str) -> DispatcherSettings:
    return make_settings(database_url, redis_url)


@pytest.fixture
def dispatcher_url(settings: DispatcherSettings) -> Iterator[str]:
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
async def http(dispatcher_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatcher_url, headers=AUTH, timeout=10) as client:
        yield client
