"""`tocsin gateway --processes N`: N nodes on one port (SO_REUSEPORT), each its own node, drained
together on SIGTERM, restarted when one dies. Real processes, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import tocsin_client
from gateway.processes import RestartPolicy, Supervisor
from tests.cli.conftest import clean_environ, tocsin
from tests.conftest import PRODUCER_KEY
from tests.gateway.cluster import new_user, server_env, token
from tests.support.processes import ServerProcess, spawn
from tests.support.services import free_port
from tests.support.tabs import Tab

GRACE = 5  # TOCSIN_SHUTDOWN_GRACE of the nodes under test
STOP_BOUND = 2 * GRACE + 5 + 5  # a node's worst-case stop, plus the supervisor's margin
NODES = {"gwp-p0", "gwp-p1"}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT")


@pytest.fixture
def env(database_url: str, redis_url: str) -> dict[str, str]:
    return server_env(
        database_url,
        redis_url,
        TOCSIN_NODE_ID="gwp",
        TOCSIN_SHUTDOWN_GRACE=str(GRACE),
        TOCSIN_PRESENCE_TTL="3",
    )


@pytest.fixture
def gateways(env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    """The supervisor of two gateway nodes, once both answer on the shared port."""
    port, metrics = free_port(), _free_pair()
    node_env = {
        **env,
        "TOCSIN_GATEWAY_PORT": str(port),
        "TOCSIN_GATEWAY_METRICS_PORT": str(metrics),
    }
    server = spawn(["gateway", "--processes", "2"], node_env, port, tmp_path, "/readyz")
    try:
        _wait_nodes(server, NODES)
        yield server
    finally:
        server.terminate(STOP_BOUND + 5)


@pytest.fixture
def dispatcher(env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    server = spawn(["dispatcher"], {**env, "TOCSIN_DISPATCHER_PORT": str(port)}, port, tmp_path)
    yield server
    server.terminate()


async def test_two_nodes_share_the_port_deliver_to_their_own_tabs_and_drain_together(
    gateways: ServerProcess, dispatcher: ServerProcess
) -> None:
    users = [new_user() for _ in range(20)]
    url = f"ws://127.0.0.1:{gateways.port}/v1/ws"
    tabs = {user: [Tab([url], token(user), reconnect=False) for _ in range(2)] for user in users}
    every = [tab for pair in tabs.values() for tab in pair]
    try:
        await asyncio.gather(*(tab.start() for tab in every))
        assert {tab.welcomes[0]["node"] for tab in every} == NODES  # the kernel spread them
        async with tocsin_client.AsyncClient(dispatcher.url, PRODUCER_KEY, timeout=10) as client:
            for user in users:
                for i in range(3):
                    await client.send(user, "system:alert", f"{user} {i}", "")
        for user, pair in tabs.items():
            for tab in pair:
                await tab.wait_seq(3, within=20)
                titles = [tab.notifications[seq]["title"] for seq in sorted(tab.notifications)]
                assert titles == [f"{user} {i}" for i in range(3)]
                assert tab.duplicates == 0

        gateways.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(gateways.process.wait, STOP_BOUND) == 0
        for tab in every:
            await tab.wait(_closed(tab), within=10)
            assert tab.close_codes == [1012]
            assert [e for e in tab.events if e["type"] == "reconnect"], tab.events
    finally:
        await asyncio.gather(*(tab.stop() for tab in every))


async def test_a_killed_node_is_restarted_and_serves_new_sockets(
    gateways: ServerProcess, dispatcher: ServerProcess
) -> None:
    url = f"ws://127.0.0.1:{gateways.port}/v1/ws"
    victim = _node_pids(gateways.pid)["gwp-p1"]
    os.kill(victim, signal.SIGKILL)
    # The supervisor notices, logs it and starts gwp-p1 again on the same port.
    await _until(lambda: _node_pids(gateways.pid).get("gwp-p1", victim) != victim, within=20)
    await asyncio.to_thread(_wait_nodes, gateways, NODES)
    assert gateways.process.poll() is None
    assert "gateway node gwp-p1" in gateways.log() and "restarting in" in gateways.log()

    users = [new_user() for _ in range(20)]
    tabs = {user: Tab([url], token(user), reconnect=False) for user in users}
    try:
        await asyncio.gather(*(tab.start() for tab in tabs.values()))
        on_restarted = [u for u, tab in tabs.items() if tab.welcomes[0]["node"] == "gwp-p1"]
        assert on_restarted  # new sockets reach the restarted node again
        async with tocsin_client.AsyncClient(dispatcher.url, PRODUCER_KEY, timeout=10) as client:
            for user in on_restarted:
                await client.send(user, "system:alert", f"back {user}", "")
        for user in on_restarted:
            await tabs[user].wait_seq(1, within=20)
            assert tabs[user].notifications[1]["title"] == f"back {user}"
    finally:
        await asyncio.gather(*(tab.stop() for tab in tabs.values()))
    assert gateways.terminate(STOP_BOUND) == 0


def test_a_node_that_keeps_dying_stops_the_supervisor_with_1(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    script = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"
    policy = RestartPolicy(first_delay=0.01, max_delay=0.05, give_up_after=3)
    supervisor = Supervisor([sys.executable, "-c", script], [dict(os.environ)], 5, policy)
    assert supervisor.run() == 1
    assert starts.read_text() == "xxx"  # started, restarted twice, then given up


def test_restart_delays_grow_to_a_cap() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=4)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 4, 4]


@pytest.mark.parametrize(
    ("extra", "args", "variable"),
    [
        ({"TOCSIN_GATEWAY_PROCESSES": "two"}, [], "TOCSIN_GATEWAY_PROCESSES"),
        ({"TOCSIN_GATEWAY_METRICS_PORT": "65535"}, ["--processes", "2"], "METRICS_PORT"),
        ({"TOCSIN_GATEWAY_METRICS_PORT": "{port-1}"}, ["--processes", "3"], "METRICS_PORT"),
    ],
)
def test_bad_process_settings_exit_2_naming_the_variable(
    env: dict[str, str], extra: dict[str, str], args: list[str], variable: str
) -> None:
    port = free_port()
    extra = {name: value.replace("{port-1}", str(port - 1)) for name, value in extra.items()}
    done = tocsin(
        "gateway", *args, env=clean_environ(**env, TOCSIN_GATEWAY_PORT=str(port), **extra)
    )
    assert done.returncode == 2, done.stderr
    assert variable in done.stderr and "Traceback" not in done.stderr


def test_a_port_held_by_another_program_exits_2(env: dict[str, str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:  # no SO_REUSEPORT: not ours to share
        port = held.getsockname()[1]
        environ = clean_environ(**env, TOCSIN_GATEWAY_PORT=str(port))
        done = tocsin("gateway", "--processes", "2", env=environ)
    assert done.returncode == 2, done.stderr
    assert "TOCSIN_GATEWAY_PORT" in done.stderr


def test_a_second_supervisor_on_the_same_port_exits_2(
    gateways: ServerProcess, env: dict[str, str]
) -> None:
    """SO_REUSEPORT would let it join the port and take half the connections: it must not."""
    environ = clean_environ(**env, TOCSIN_GATEWAY_PORT=str(gateways.port))
    done = tocsin("gateway", "--processes", "2", env=environ)
    assert done.returncode == 2, done.stderr
    assert "TOCSIN_GATEWAY_PORT" in done.stderr
    assert gateways.process.poll() is None


def test_processes_argument_errors_exit_2() -> None:
    done = tocsin("gateway", "--processes", "0", env=clean_environ())
    assert done.returncode == 2 and "must be positive" in done.stderr


# -- helpers ---------------------------------------------------------------------------------


def _free_pair() -> int:
    """A port whose next one is free too (the two nodes' metrics ports)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.create_server(("127.0.0.1", port + 1)):
                return port
        except OSError:
            continue
    raise RuntimeError("no two free ports in a row")


def _wait_nodes(server: ServerProcess, nodes: set[str], within: float = 30) -> None:
    """Until every node answers /healthz on the shared port (each request a new connection,
    which the kernel hands to any node)."""
    seen: set[str] = set()
    deadline = time.monotonic() + within
    while not nodes <= seen:
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nodes {sorted(nodes - seen)} never answered:\n{server.log()}")
        try:
            seen.add(httpx.get(f"{server.url}/healthz", timeout=2).json()["node"])
        except httpx.HTTPError:
            time.sleep(0.1)


def _node_pids(supervisor: int) -> dict[str, int]:
    """The supervisor's children by node id (read from /proc)."""
    pids = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rpartition(")")[2].split()[1]) != supervisor:
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue  # gone meanwhile
        for item in environ:
            if item.startswith(b"TOCSIN_NODE_ID="):
                pids[item.split(b"=", 1)[1].decode()] = int(entry.name)
    return pids


def _closed(tab: Tab) -> Callable[[], bool]:
    return lambda: bool(tab.close_codes)


async def _until(predicate: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
