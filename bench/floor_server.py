"""The floor: the user's stack with no features. Starlette + uvicorn (the gateway's uvicorn
settings), one redis-py pub/sub connection, one channel per user, each message relayed as it
is to that user's sockets. No auth, presence, acks, resume or backpressure.

`python -m bench.floor_server PORT REDIS_URL`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import orjson
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from shared import keys

BATCH = orjson.dumps({"type": "notifications:batch", "notifications": [], "more": False}).decode()


class Relay:
    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url)
        self.pubsub = self.redis.pubsub()
        self.users: dict[str, set[WebSocket]] = {}

    async def run(self) -> None:
        await self.pubsub.subscribe("bench:floor")  # listen() needs one subscription
        async for message in self.pubsub.listen():
            if message["type"] != "message":
                continue
            user = keys.user_from_channel(message["channel"].decode())
            text = message["data"].decode()
            for ws in list(self.users.get(user, ())):
                with contextlib.suppress(Exception):
                    await ws.send_text(text)

    async def socket(self, ws: WebSocket) -> None:
        offered = ws.scope.get("subprotocols") or []
        await ws.accept(subprotocol="tocsin.v1" if "tocsin.v1" in offered else None)
        hello = orjson.loads(await ws.receive_text())
        user = str(hello["user"])
        conns = self.users.setdefault(user, set())
        if not conns:
            await self.pubsub.subscribe(keys.user_channel(user))
        conns.add(ws)
        try:
            welcome = {"type": "welcome", "v": 1, "userId": user, "lastSeq": 0}
            await ws.send_text(orjson.dumps(welcome).decode())
            await ws.send_text(BATCH)
            while True:
                await ws.receive_text()  # acks: read and dropped
        except WebSocketDisconnect:
            pass
        finally:
            conns.discard(ws)
            if not conns:
                self.users.pop(user, None)
                with contextlib.suppress(Exception):
                    await self.pubsub.unsubscribe(keys.user_channel(user))


def create_app(redis_url: str) -> Starlette:
    relay = Relay(redis_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(relay.run())
        yield
        task.cancel()

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    routes = [Route("/healthz", healthz), WebSocketRoute("/v1/ws", relay.socket)]
    return Starlette(routes=routes, lifespan=lifespan)


if __name__ == "__main__":
    uvicorn.run(
        create_app(sys.argv[2]),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_level="warning",
    )
