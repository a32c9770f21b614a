"""Generated frames after `hello` on a real gateway: never a 1011, never a dropped socket;
the socket either stays usable (answers `sync-count`) or closes with a documented code."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import json_value, text
from tests.gateway.cluster import Cluster, new_user, token

EXAMPLES = 100
# Closes a client can cause on purpose (docs/protocol.md, "Close codes"), and 1007: RFC 6455's
# answer to a text frame that is not UTF-8 (a lone surrogate), sent by the WebSocket layer.
DOCUMENTED = {1003, 1007, 1008, 1009, 4001, 4003, 4008}
TYPES = ["ack", "read", "read-all", "seen-all", "sync-count", "token", "ping", "hello", "nope"]
FIELDS = st.sampled_from(["seq", "id", "upToSeq", "token", "t", "ref", "v", "lastSeq"])
small_json = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), text
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)
structured = st.builds(
    lambda kind, extra: json.dumps({"type": kind, **extra}),
    st.sampled_from(TYPES),
    st.dictionaries(FIELDS, small_json, max_size=3),
)
nasty = st.one_of(
    st.builds(
        lambda extra: json.dumps({"type": "ack", **extra}),
        st.dictionaries(FIELDS | st.just("type"), json_value, max_size=3),
    ),
    json_value.map(json.dumps),
    st.sampled_from(
        ["", "{", "[]", "null", '{"type": null}', "1e400", '{"type":"ping","t":1e999}']
    ),
    text,
    st.binary(max_size=32),
)
# Well-formed frames first, then perhaps one that may end the socket.
sequences = st.builds(
    lambda good, last: [*good, *last],
    st.lists(structured, min_size=1, max_size=5),
    st.lists(nasty, max_size=1),
)


def utf8(frame: str) -> bool:
    try:
        frame.encode()
    except UnicodeEncodeError:
        return False
    return True


async def exchange(url: str, sent: list[str | bytes]) -> tuple[int | None, dict[str, Any] | None]:
    """Send the frames after a good hello; (close code or None, the answer to sync-count).
    A text frame that is not UTF-8 is sent last: the server must close, so nothing follows."""
    async with websockets.connect(url, subprotocols=["tocsin.v1"], open_timeout=5) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token(new_user())}))
        try:
            async with asyncio.timeout(5):
                for frame in sent:
                    if isinstance(frame, str) and not utf8(frame):
                        await ws.send(frame.encode("utf-8", "surrogatepass"), text=True)
                        while True:
                            await ws.recv()
                    await ws.send(frame)
                await ws.send(json.dumps({"type": "sync-count", "ref": "probe"}))
                while True:
                    answer = json.loads(await ws.recv())
                    if answer["type"] == "unread-count":
                        return None, answer
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, None


@settings(
    settings.get_profile("tocsin-fuzz"),
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sent=sequences)
def test_generated_frames_never_break_a_socket(cluster: Cluster, sent: list[str | bytes]) -> None:
    code, answer = asyncio.run(exchange(cluster.ws_url(0), sent))
    event(f"close {code}" if code is not None else "usable")
    if code is None:
        assert answer is not None and answer["unreadCount"] == 0
    else:
        assert code in DOCUMENTED, (code, sent)
