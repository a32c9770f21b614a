"""`tocsin run`: every service of one node in one command.

Unset DATABASE_URL / REDIS_URL mean the embedded default: real PostgreSQL and Redis started
here, data in the data folder. Then migrate, start the gateway and the dispatcher as child
processes, and supervise them until Ctrl-C / SIGTERM or until one of them dies.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from shared import logs
from shared.config import ConfigError, DispatcherSettings, Env, WorkerSettings
from shared.migrate import migrate_url
from tocsin import secrets_store, supervisor
from tocsin.datadir import DataDirLock, data_dir
from tocsin.embedded import start_postgres, start_redis
from tocsin.secrets_store import Secrets

READY_TIMEOUT = 60.0
STOP_MARGIN = 10.0  # beyond the gateway's own drain time


@dataclass
class Node:
    env: dict[str, str]
    folder: Path | None = None
    embedded: list[str] = field(default_factory=list)
    secrets: Secrets | None = None  # set when the producer key comes from the data folder
    generated: bool = False


def prepare(environ: Mapping[str, str], cleanup: ExitStack) -> Node:
    """Start the embedded servers the environment does not name; stops go on `cleanup`."""
    node = Node(env=dict(environ))
    want_postgres = not node.env.get("DATABASE_URL", "").strip()
    want_redis = not node.env.get("REDIS_URL", "").strip()
    if not (want_postgres or want_redis):
        return node
    node.folder = data_dir(node.env)
    cleanup.enter_context(DataDirLock(node.folder))
    if want_postgres:
        _use_folder_secrets(node, node.folder)
        postgres = start_postgres(node.folder)
        cleanup.callback(_stopping, postgres.name, postgres.stop)
        node.env["DATABASE_URL"] = postgres.url
        node.embedded.append("PostgreSQL")
    if want_redis:
        redis = start_redis(node.folder)
        cleanup.callback(_stopping, redis.name, redis.stop)
        node.env["REDIS_URL"] = redis.url
        node.embedded.append("Redis")
    return node


def _use_folder_secrets(node: Node, folder: Path) -> None:
    """Secrets not in the environment come from the data folder (generated on first run).
    Only the embedded database gets this: with external servers, secrets must be configured."""
    found, node.generated = secrets_store.load_or_create(folder)
    for name, value in found.as_env().items():
        if not node.env.get(name, "").strip():
            node.env[name] = value
    if node.env[secrets_store.PRODUCER_KEYS] == found.producer_key:
        node.secrets = found


def _stopping(name: str, stop: Callable[[], None]) -> None:
    print(f"tocsin: stopping embedded {name}", file=sys.stderr)
    stop()


@dataclass(frozen=True)
class Plan:
    """What the children will be, validated before any of them starts."""

    dispatcher_env: dict[str, str]
    gateway_env: dict[str, str]
    dispatcher_url: str
    gateway_url: str
    stop_grace: float
    worker_url: str | None = None  # its health port; None when TOCSIN_WORKER_METRICS_PORT=0
    gateway_processes: int = 1  # TOCSIN_GATEWAY_PROCESSES: nodes on the gateway's one port


def plan(node: Node) -> Plan:
    from gateway.settings import GatewaySettings

    env = {**node.env, "PYTHONUNBUFFERED": "1"}
    # The children write where this process writes; `auto` is decided once, here.
    env["TOCSIN_LOG_FORMAT"] = logs.resolve_format(logs.LogSettings.from_env(env).format)
    dispatcher = DispatcherSettings.from_env(Env(env))
    dispatcher_url = f"http://{_reachable(dispatcher.host)}:{dispatcher.port}"
    env.setdefault("TOCSIN_DISPATCHER_URL", dispatcher_url)
    gateway_env = {**env, "TOCSIN_DEMO": env.get("TOCSIN_DEMO") or "true"}
    gateway = GatewaySettings.from_env(Env(gateway_env))
    if not env.get("TOCSIN_WORKER_METRICS_PORT", "").strip():
        port = _worker_port(dispatcher.host, dispatcher.port, gateway.port)
        env["TOCSIN_WORKER_METRICS_PORT"] = str(port)
    worker = WorkerSettings.from_env(Env(env))
    _check_free(dispatcher.host, dispatcher.port, "TOCSIN_DISPATCHER_PORT")
    _check_free(gateway.host, gateway.port, "TOCSIN_GATEWAY_PORT")
    if worker.metrics_port:
        _check_free(worker.metrics_host, worker.metrics_port, "TOCSIN_WORKER_METRICS_PORT")
    return Plan(
        dispatcher_env=env,
        gateway_env=gateway_env,
        dispatcher_url=dispatcher_url,
        gateway_url=f"http://{_reachable(gateway.host)}:{gateway.port}",
        worker_url=(
            f"http://{_reachable(worker.metrics_host)}:{worker.metrics_port}"
            if worker.metrics_port
            else None
        ),
        # The gateway drains for up to its grace, then uvicorn waits grace + 5 s more (with
        # several processes, each node at once; their supervisor allows 5 s of the margin).
        stop_grace=2 * gateway.shutdown_grace + 5 + STOP_MARGIN,
        gateway_processes=gateway.processes,
    )


def _worker_port(host: str, dispatcher_port: int, gateway_port: int) -> int:
    """Beside the dispatcher's port (8082 by default), so nodes on other ports do not clash;
    any free port when that one is taken, or is the gateway's (free until the gateway starts;
    it is only the worker's health and metrics port)."""
    for port in (dispatcher_port + 1, 0):
        if port > 65535 or port == gateway_port:
            continue
        try:
            with socket.create_server((host, port)) as probe:
                return int(probe.getsockname()[1])
        except OSError:
            continue
    raise ConfigError("TOCSIN_WORKER_METRICS_PORT", f"no free port on {host}")


def _check_free(host: str, port: int, name: str) -> None:
    """Fail before starting anything: a foreign server on the port would answer our probes."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise ConfigError(name, f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def run(environ: Mapping[str, str]) -> int:
    """Exit 0 after a requested stop; 1 if a service died or never became ready."""
    stop = supervisor.StopRequest()
    stop.install()  # before anything starts: a Ctrl-C during start-up still cleans up
    with ExitStack() as cleanup:
        node = prepare(environ, cleanup)
        steps = plan(node)
        logs.configure(logs.LogSettings.from_env(steps.dispatcher_env), secrets=_secrets(node))
        applied = asyncio.run(migrate_url(node.env["DATABASE_URL"]))
        print(f"tocsin: migrations applied: {', '.join(applied) or 'none pending'}")
        if stop.requested:
            return 0
        children = _start_children(steps)
        cleanup.callback(supervisor.stop_all, children, stop, steps.stop_grace)
        urls = [steps.dispatcher_url + "/readyz", steps.gateway_url + "/readyz"]
        if steps.worker_url is not None:
            urls.append(steps.worker_url + "/readyz")
        problem = supervisor.wait_ready(children, urls, stop, READY_TIMEOUT)
        if problem == "interrupted":
            return 0
        if problem is not None:
            print(f"tocsin: {problem}; stopping", file=sys.stderr)
            return 1
        print(banner(node, steps), flush=True)
        dead = supervisor.watch(children, stop)
        if dead is not None:
            print(
                f"tocsin: {dead.name} exited with code {dead.exited()}; stopping", file=sys.stderr
            )
            return 1
        print("tocsin: stopping", file=sys.stderr)
    return 0


def _secrets(node: Node) -> list[str]:
    names = (
        "TOCSIN_PRODUCER_KEYS",
        "TOCSIN_PRODUCER_KEY",
        "TOCSIN_JWT_SECRET",
        secrets_store.VAPID_PRIVATE_KEY,
        secrets_store.UNSUBSCRIBE_SECRET,
    )
    return [key for name in names for key in node.env.get(name, "").split(",") if key.strip()]


def _start_children(steps: Plan) -> list[supervisor.Child]:
    command = [sys.executable, "-m", "tocsin"]
    return [
        supervisor.Child("dispatcher", [*command, "dispatcher"], steps.dispatcher_env),
        supervisor.Child("gateway", [*command, "gateway"], steps.gateway_env),
        supervisor.Child("worker", [*command, "worker"], steps.dispatcher_env),
    ]


def banner(node: Node, steps: Plan) -> str:
    # The key is shown to a person at a terminal, never written into a log file or journal.
    shown = node.secrets is not None and sys.stdout.isatty()
    key = node.secrets.producer_key if node.secrets and shown else "$TOCSIN_PRODUCER_KEY"
    tocsin = _command_name()
    url = steps.dispatcher_url
    prefix = "" if url == "http://127.0.0.1:8081" else f"TOCSIN_DISPATCHER_URL={url} "
    if node.embedded and node.folder is not None:
        where = f"embedded {' and '.join(node.embedded)}, data in {node.folder}"
    else:
        where = "external PostgreSQL and Redis"
    lines = [
        "",
        f"Tocsin is running ({where})",
        f"  gateway      {steps.gateway_url}   WebSocket {_ws(steps.gateway_url)}/v1/ws"
        + (f"   ({steps.gateway_processes} processes)" if steps.gateway_processes > 1 else ""),
        f"  dispatcher   {url}",
        f"  worker       {steps.worker_url or 'no health port'}   push and email fallback"
        " (docs/fallback.md)",
        f"  demo page    {steps.gateway_url}/demo?user=42   (the user the commands below use)",
    ]
    if node.secrets is not None:
        state = "generated" if node.generated else "kept"
        lines += [
            f"  producer key {key if shown else 'TOCSIN_PRODUCER_KEYS in the secrets file'}",
            f"  secrets      {state} in {node.secrets.path} (TOCSIN_PRODUCER_KEYS,"
            " TOCSIN_JWT_SECRET; owner-only)",
        ]
    lines += [
        "",
        "Send a notification from another shell:",
        f"  {prefix}{tocsin} send --user 42 --type message:received --title 'Hello' --body 'Hi!'",
        f'  curl -X POST {url}/v1/notifications -H "Authorization: Bearer {key}" \\',
        "       -H 'Content-Type: application/json' \\",
        """       -d '{"user_id": "42", "type": "message:received", "title": "Hello"}'""",
        f"A browser token for user 42:  {tocsin} token 42",
        "Stop with Ctrl-C.",
        "",
    ]
    return "\n".join(lines)


def _command_name() -> str:
    """`.venv/bin/tocsin` after `make run`; plain `tocsin` when it is not beside this Python."""
    script = Path(sys.executable).parent / "tocsin"
    if not script.exists():
        return "tocsin"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _ws(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")
