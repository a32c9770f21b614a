"""A real dispatcher on a free 127.0.0.1 port for the client to talk to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatcher.app import create_app
from tests.dispatcher.support import make_settings, serve


@pytest.fixture
def dispatcher_url(database_url: str, redis_url: str) -> Iterator[str]:
    with serve(create_app(make_settings(database_url, redis_url))) as url:
        yield url
