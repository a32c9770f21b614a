"""Several gateway nodes on one machine and one port (`tocsin gateway --processes N`).

A gateway node is one event loop on one core; this runs N of them. Each child process is a
whole node: its own node id (`<base>-p<k>`), presence claims, pub/sub link to Redis and, when
`TOCSIN_GATEWAY_METRICS_PORT` is set, metrics port (that port + k). Each binds its own
listening socket to the one service port with SO_REUSEPORT, so the Linux kernel spreads new
connections over the nodes (by a hash of each connection's addresses) and no socket or file
descriptor is passed between processes. The supervisor binds the same address without ever
listening on it: that keeps the port reserved while a node restarts and takes no connection.

The supervisor forwards SIGTERM / SIGINT to every node, so each drains as a lone gateway does
(a `reconnect` frame and close 1012 on every socket; see gateway/server.py), and exits once
all have. A node that dies is logged and started again after a growing delay; one that keeps
dying (RestartPolicy: 5 deaths in a row, each within a minute of its start) stops them all,
exit 1.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import FrameType

from gateway.settings import GatewaySettings
from shared import logs
from shared.children import die_with_parent
from shared.config import ConfigError

logger = logging.getLogger("tocsin.gateway.processes")

POLL_INTERVAL = 0.1  # seconds between looks at the children
STOP_MARGIN = 5.0  # beyond a node's own worst-case stop (2 x grace + 5 s)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5  # seconds before restarting a node that died; doubles each time
    max_delay: float = 10.0
    give_up_after: int = 5  # deaths in a row, each within `stable` seconds of its start
    stable: float = 60.0  # a node that lived this long starts a fresh count

    def delay(self, deaths: int) -> float:
        return float(min(self.first_delay * 2 ** max(deaths - 1, 0), self.max_delay))


# -- the children ----------------------------------------------------------------------------


def node_id(base: str, index: int) -> str:
    return f"{base}-p{index}"


def metrics_port(base: int, index: int) -> int:
    """Node k's metrics port: the configured one + k (0 stays 0: /metrics on the service port)."""
    return base + index if base else 0


def child_envs(settings: GatewaySettings, environ: Mapping[str, str]) -> list[dict[str, str]]:
    """Each node's environment: the supervisor's, with its own node id and metrics port."""
    log_format = logs.resolve_format(logs.LogSettings.from_env(environ).format)
    return [
        {
            **environ,
            "PYTHONUNBUFFERED": "1",
            "TOCSIN_LOG_FORMAT": log_format,  # `auto` decided once, here: one stderr for all
            "TOCSIN_GATEWAY_PROCESSES": "1",
            "TOCSIN_GATEWAY_PORT": str(settings.port),
            "TOCSIN_NODE_ID": node_id(settings.node_id, index),
            "TOCSIN_GATEWAY_METRICS_PORT": str(metrics_port(settings.metrics_port, index)),
        }
        for index in range(settings.processes)
    ]


def check_metrics_ports(settings: GatewaySettings) -> None:
    """Every node's metrics port is a port, not the service port, and free."""
    name = "TOCSIN_GATEWAY_METRICS_PORT"
    if not settings.metrics_port:
        return
    ports = [metrics_port(settings.metrics_port, k) for k in range(settings.processes)]
    if ports[-1] > 65535:
        raise ConfigError(name, f"+ {settings.processes - 1} (one port per process) passes 65535")
    if settings.port in ports:
        raise ConfigError(name, f"{ports[0]}..{ports[-1]} (one per process) holds {settings.port}")
    for port in ports:
        try:
            with socket.create_server((settings.metrics_host, port)):
                pass
        except OSError as exc:
            raise ConfigError(
                name, f"cannot listen on {settings.metrics_host}:{port}: {exc.strerror}"
            ) from None


# -- the listening sockets -------------------------------------------------------------------


def reuse_port_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to host:port with SO_REUSEPORT, one per address the host resolves to
    (as asyncio's create_server binds them), not listening yet. OSError if the port is held
    by a socket without SO_REUSEPORT (another program) or by another user."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def reserve_port(settings: GatewaySettings) -> tuple[list[socket.socket], int]:
    """The supervisor's hold on the service port, and that port (chosen here when it is 0)."""
    if not sys.platform.startswith("linux"):
        raise ConfigError(
            "TOCSIN_GATEWAY_PROCESSES",
            "more than 1 needs Linux (SO_REUSEPORT spreads connections only there); "
            "run one `tocsin gateway` per port instead",
        )
    try:
        if settings.port:  # bound by anything, even another supervisor's nodes: not ours
            socket.create_server((settings.host, settings.port)).close()
        sockets = reuse_port_sockets(settings.host, settings.port)
    except OSError as exc:
        raise ConfigError(
            "TOCSIN_GATEWAY_PORT",
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
        ) from None
    return sockets, int(sockets[0].getsockname()[1])


def serve_node(settings: GatewaySettings, log_level: str = "info") -> bool:
    """One node of several (run in each child): gateway/server.py's server on a socket of
    its own with SO_REUSEPORT. False when it never started."""
    # Here, not at the top: the supervisor never loads the server (uvicorn, the app).
    from gateway.server import DrainingServer, gateway_of, uvicorn_config

    try:
        sockets = reuse_port_sockets(settings.host, settings.port)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror)
        return False
    config = uvicorn_config(settings, log_level)
    server = DrainingServer(config, gateway_of(config))
    # uvicorn names its address only when it binds the socket itself.
    logger.info(
        "gateway node %s on http://%s:%d (SO_REUSEPORT, pid %d)",
        settings.node_id,
        settings.host,
        settings.port,
        os.getpid(),
    )
    server.run(sockets=sockets)
    return server.started


# -- the supervisor --------------------------------------------------------------------------


@dataclass
class Node:
    """One slot: the process running in it now, and how its last runs ended."""

    index: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    deaths: int = 0  # in a row, each soon after its start
    restart_at: float | None = None

    @property
    def name(self) -> str:
        return self.env.get("TOCSIN_NODE_ID", f"p{self.index}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Supervisor:
    command: Sequence[str]
    envs: Sequence[dict[str, str]]
    stop_grace: float
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    signals: list[int] = field(default_factory=list)

    def run(self) -> int:
        """Until SIGTERM / SIGINT (0 once every node drained; 1 if one had to be killed) or
        until a node keeps dying (1)."""
        previous = {sig: signal.signal(sig, self._record) for sig in STOP_SIGNALS}
        nodes = [Node(index, dict(env)) for index, env in enumerate(self.envs)]
        try:
            for node in nodes:
                self._start(node)
            given_up = self._watch(nodes)
        finally:
            clean = self._stop(nodes)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if given_up or not clean else 0

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _start(self, node: Node) -> None:
        node.process = subprocess.Popen(
            list(self.command),
            env=node.env,
            process_group=0,  # a terminal's Ctrl-C reaches only the supervisor
            preexec_fn=die_with_parent(os.getpid()),
        )
        node.started, node.restart_at = time.monotonic(), None
        logger.info("gateway node %s started (pid %d)", node.name, node.process.pid)

    def _watch(self, nodes: list[Node]) -> bool:
        """Restart nodes that die until a signal (False) or one keeps dying (True)."""
        while not self.signals:
            now = time.monotonic()
            for node in nodes:
                if node.restart_at is not None:
                    if now >= node.restart_at:
                        self._start(node)
                elif not node.alive() and self._died(node, now):
                    return True
            time.sleep(POLL_INTERVAL)
        return False

    def _died(self, node: Node, now: float) -> bool:
        """Log a death and schedule the restart; True when the node keeps dying."""
        assert node.process is not None
        code, lived = node.process.returncode, now - node.started
        node.deaths = 1 if lived >= self.policy.stable else node.deaths + 1
        if node.deaths >= self.policy.give_up_after:
            logger.error(
                "gateway node %s exited with code %s %d times in a row; stopping every node",
                node.name,
                code,
                node.deaths,
            )
            return True
        delay = self.policy.delay(node.deaths)
        logger.warning(
            "gateway node %s (pid %d) exited with code %s after %.1f s; restarting in %.1f s",
            node.name,
            node.process.pid,
            code,
            lived,
            delay,
        )
        node.restart_at = now + delay
        return False

    def _stop(self, nodes: list[Node]) -> bool:
        """SIGTERM every node (each drains), wait up to the grace, cut short by another
        signal, then SIGKILL. True when every node stopped by itself."""
        seen = len(self.signals)
        live = [node for node in nodes if node.alive()]
        for node in live:
            assert node.process is not None
            node.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        while any(node.alive() for node in live):
            if time.monotonic() > deadline or len(self.signals) > seen:
                break
            time.sleep(POLL_INTERVAL)
        clean = True
        for node in live:
            assert node.process is not None
            if node.alive():
                logger.warning("gateway node %s did not stop in time; killing it", node.name)
                node.process.kill()
                clean = False
            node.process.wait()
        logger.info("every gateway node stopped")
        return clean


def supervise(settings: GatewaySettings, environ: Mapping[str, str], command: Sequence[str]) -> int:
    """Run settings.processes nodes with `command` (which must end in serve_node) until a
    signal; a ConfigError before any starts when the ports are wrong or taken."""
    reserved, port = reserve_port(settings)
    try:
        settings = replace(settings, port=port)
        check_metrics_ports(settings)
        envs = child_envs(settings, environ)
        logger.info(
            "%d gateway nodes on http://%s:%d (%s-p0..p%d)",
            settings.processes,
            settings.host,
            port,
            settings.node_id,
            settings.processes - 1,
        )
        stop_grace = 2 * settings.shutdown_grace + 5 + STOP_MARGIN
        return Supervisor(command, envs, stop_grace).run()
    finally:
        for sock in reserved:
            sock.close()
