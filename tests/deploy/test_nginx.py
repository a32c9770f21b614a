"""Real nginx (deploy/nginx.conf) in front of two gateways and two dispatchers on loopback:
send and receive through it, then drain one gateway and show its tabs resumed on the other."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.server import KEEP_ALIVE_SECONDS
from tests.deploy import loadbalancer, stack
from tests.deploy.stack import Service
from tests.support.services import free_port
from tests.support.tabs import Tab


@dataclass
class Edge:
    gateways: list[Service]
    dispatchers: list[Service]
    nginx: loadbalancer.Nginx


@pytest.fixture(scope="module")
def edge(deploy_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    logs = tmp_path_factory.mktemp("edge")
    services: list[Service] = []
    nginx = None
    try:
        for role, node in [("gateway", "gwA"), ("gateway", "gwB")]:
            services.append(stack.start(role, node, deploy_env, logs))
        for node in ["dpA", "dpB"]:
            services.append(stack.start("dispatcher", node, deploy_env, logs))
        ports = [s.server.port for s in services]
        nginx = loadbalancer.run(logs, ports[:2], ports[2:], free_port(), free_port())
        yield Edge(services[:2], services[2:], nginx)
    finally:
        if nginx is not None:
            nginx.stop()
        stack.stop(services)


def test_shipped_config_passes_nginx_t(tmp_path: Path) -> None:
    result = loadbalancer.check(loadbalancer.CONF, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_upstream_connections_idle_out_before_uvicorn_closes_them() -> None:
    """nginx's default (60 s) reuses a connection uvicorn closes after 5 s idle: a request
    that races the close gets a 502."""
    shipped = loadbalancer.CONF.read_text()
    blocks = re.findall(r"upstream (\w+) \{(.*?)\}", shipped, re.S)
    assert [name for name, _ in blocks] == ["tocsin_gateways", "tocsin_dispatchers"]
    for name, block in blocks:
        timeout = re.search(r"^\s*keepalive_timeout (\d+)s;", block, re.M)
        assert timeout, f"{name} has no keepalive_timeout"
        assert int(timeout.group(1)) < KEEP_ALIVE_SECONDS, name  # the dispatcher's is the same


def test_rendered_copy_changes_only_the_marked_lines() -> None:
    shipped = loadbalancer.CONF.read_text()
    rendered = loadbalancer.render(shipped, {"public-listen": ["listen 127.0.0.1:1;"]})
    assert "listen 127.0.0.1:1;" in rendered and "listen 80;" not in rendered
    assert len(rendered.splitlines()) == len(shipped.splitlines())
    with pytest.raises(AssertionError, match="no-such-marker"):
        loadbalancer.render(shipped, {"no-such-marker": []})


async def test_each_listener_reaches_only_its_service(edge: Edge) -> None:
    nginx = edge.nginx
    async with httpx.AsyncClient(timeout=5) as http:
        for base, behind in (
            (nginx.public_url, edge.gateways),
            (nginx.internal_url, edge.dispatchers),
        ):
            nodes = [(await http.get(f"{s.url}/healthz")).json()["node"] for s in behind]
            via = (await http.get(f"{base}/healthz")).json()
            assert via["service"] == behind[0].role and via["node"] in nodes
        for base in (nginx.public_url, nginx.internal_url):
            blocked = await http.get(f"{base}/metrics")
            # nginx's own page, not a Tocsin JSON error: the request never left the balancer
            assert blocked.status_code == 404 and "nginx" in blocked.text
        send = await http.post(f"{nginx.public_url}/v1/notifications", json={})
        assert send.status_code in (401, 405)  # a browser-facing gateway, never a dispatcher


async def test_send_through_nginx_and_receive_over_websocket_through_nginx(edge: Edge) -> None:
    user = stack.new_user()
    tab = await Tab([edge.nginx.ws_url], stack.token(user), reconnect=False).start()
    try:
        async with stack.producer(edge.nginx.internal_url) as client:
            sent = [(await client.send(user, "system:alert", f"via nginx {i}")).seq for i in (1, 2)]
        await tab.wait_seq(sent[-1], within=10)
        assert sorted(tab.notifications) == sent
        assert tab.notifications[sent[0]]["title"] == "via nginx 1"
        assert tab.welcomes[0]["node"] in ("gwA", "gwB")
    finally:
        await tab.stop()


@dataclass
class Sent:
    seqs: dict[str, list[int]]
    last_at: float = 0.0  # time.monotonic() of the last send


async def stream(url: str, users: list[str], rounds: int, every: float) -> Sent:
    """Send `rounds` notifications to each user through nginx; the seqs accepted per user."""
    sent = Sent({user: [] for user in users})
    async with stack.producer(url) as client:
        for i in range(rounds):
            for user in users:
                sent.seqs[user].append((await client.send(user, "system:alert", f"n{i}")).seq)
            sent.last_at = time.monotonic()
            await asyncio.sleep(every)
    return sent


def node_of(tab: Tab) -> str:
    return str(tab.welcomes[-1]["node"])


# Last in the module: it stops gwA.
async def test_drained_gateway_tabs_resume_on_the_other_through_nginx_losing_nothing(
    edge: Edge,
) -> None:
    users = [stack.new_user() for _ in range(3)]
    tabs = {user: [Tab([edge.nginx.ws_url], stack.token(user)) for _ in range(2)] for user in users}
    every_tab = [tab for group in tabs.values() for tab in group]
    try:
        for tab in every_tab:  # one at a time, so least_conn alternates the two gateways
            await tab.start()
        on_a = [tab for tab in every_tab if node_of(tab) == "gwA"]
        assert 0 < len(on_a) < len(every_tab), [node_of(t) for t in every_tab]

        sending = asyncio.create_task(stream(edge.nginx.internal_url, users, 80, 0.05))
        await asyncio.sleep(0.4)
        code = await asyncio.to_thread(edge.gateways[0].server.terminate, 20)
        assert code in (0, -15)
        gone = time.monotonic()
        sent = await asyncio.wait_for(sending, 30)
        assert sent.last_at > gone, "the stream ended before the drain: lengthen it"

        for user, group in tabs.items():
            for tab in group:
                await tab.wait_seq(sent.seqs[user][-1], within=15)
                assert sorted(tab.notifications) == sent.seqs[user]  # nothing lost
                assert tab.duplicates == 0, tab.arrivals  # nothing twice
                assert node_of(tab) == "gwB"
        for tab in on_a:
            assert tab.connections >= 2 and 1012 in tab.close_codes
    finally:
        await asyncio.gather(*(tab.stop() for tab in every_tab))
