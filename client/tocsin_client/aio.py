"""The asyncio client: the same API as Client, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from tocsin_client import _core
from tocsin_client._core import SendResult


class AsyncClient:
    """Sends notifications to a Tocsin dispatcher; retries are safe (idempotency keys)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        self._config = _core.Config(base_url, api_key, timeout, retries, backoff)
        self._http = httpx.AsyncClient(**self._config.httpx_options())

    async def send(
        self,
        user_id: str,
        type: str,
        title: str,
        body: str = "",
        *,
        action_url: str | None = None,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        expires_at: datetime | str | None = None,
    ) -> SendResult:
        """Send to one user."""
        request = _core.payload(
            {"user_id": user_id}, type, title, body, action_url, data, idempotency_key, expires_at
        )
        return (await self._post(request))[0]

    async def send_many(
        self,
        user_ids: Sequence[str],
        type: str,
        title: str,
        body: str = "",
        *,
        action_url: str | None = None,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        expires_at: datetime | str | None = None,
    ) -> list[SendResult]:
        """Send to many users at once; one result per distinct user, in order."""
        request = _core.payload(
            _core.many(user_ids), type, title, body, action_url, data, idempotency_key, expires_at
        )
        return await self._post(request)

    async def _post(self, body: dict[str, Any]) -> list[SendResult]:
        call = self._config.call(body)
        while True:
            try:
                response = await self._http.post(
                    _core.PATH, content=call.content, headers=call.headers
                )
            except httpx.TransportError as exc:
                call.failed(exc)
            else:
                results = call.answered(response)
                if results is not None:
                    return results
            await asyncio.sleep(call.next_delay())

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
