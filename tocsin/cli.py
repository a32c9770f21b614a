"""The `tocsin` command line.

This module imports only the standard library: `tocsin --help` and argument errors never load
the servers (Starlette, asyncpg, redis, uvicorn, the embedded PostgreSQL). Each handler imports
what its command needs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

EXIT_CONFIG = 2
STORE_HINT = "single services need external servers; `tocsin run` starts embedded ones"

Handler = Callable[[argparse.Namespace, Mapping[str, str]], int]


def _run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from tocsin.node import run

    return run(environ)


def _dispatcher(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from tocsin.serve import serve_dispatcher

    return serve_dispatcher(environ)


def _gateway(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from tocsin.serve import serve_gateway

    return serve_gateway(environ, reuse_port=args.reuse_port)


def _worker(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from tocsin.serve import serve_worker

    return serve_worker(environ)


def _migrate(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from shared import logs
    from tocsin.shell import migrate

    logs.configure(logs.LogSettings.from_env(environ))  # the migrator's own lines, like a service's
    applied = migrate(environ)
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def _token(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from tocsin.shell import token

    print(token(environ, args.user_id, args.ttl))
    return 0


def _send(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from tocsin.shell import Message, send
    from tocsin_client import TocsinError

    message = Message(
        users=args.user,
        type=args.type,
        title=args.title,
        body=args.body,
        action_url=args.action_url,
        data=args.data,
        idempotency_key=args.idempotency_key,
    )
    try:
        lines = send(environ, message, args.url)
    except TocsinError as exc:
        print(f"tocsin: send failed: {exc}", file=sys.stderr)  # the server's message and fields
        return 1
    print("\n".join(lines))
    return 0


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _processes(text: str) -> str:
    if text.strip().lower() == "auto":
        return "auto"
    return str(_positive(text))


def _data_dir_option(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"data folder of the embedded default, {what} (default: $TOCSIN_DATA_DIR, "
        "else .data in the current folder)",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="tocsin",
        description="Real-time notifications: every tab, every device, never lost.",
        epilog="Configuration comes from environment variables (see README.md).",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    run = command(
        "run",
        _run,
        "Run a whole node: gateway and dispatcher, with embedded PostgreSQL and Redis "
        "when DATABASE_URL / REDIS_URL are unset.",
    )
    _data_dir_option(run, "where the database and the generated secrets are kept")
    _gateway_command(
        command("gateway", _gateway, "Run a gateway node (browser WebSockets and REST).")
    )
    command("dispatcher", _dispatcher, "Run one dispatcher (the producers' HTTP API).")
    command(
        "worker",
        _worker,
        "Run one fallback worker (web push and email for notifications left unseen or unread).",
    )
    migrate = command(
        "migrate",
        _migrate,
        "Apply pending schema migrations to DATABASE_URL (or to the embedded database).",
    )
    _data_dir_option(migrate, "used when DATABASE_URL is unset")
    _token_command(command("token", _token, "Print a browser JWT for a user (HS256)."))
    _send_command(command("send", _send, "Send a notification through the dispatcher."))
    return root


def _gateway_command(gateway: argparse.ArgumentParser) -> None:
    gateway.add_argument(
        "--processes",
        type=_processes,
        metavar="N",
        help="run N gateway nodes on the one port, one per core: a number or `auto` (one per "
        "core); each is its own node (TOCSIN_NODE_ID-p<k>, metrics port + k). Linux only. "
        "Default: $TOCSIN_GATEWAY_PROCESSES, else 1",
    )
    # What each node of --processes runs: bind the port with SO_REUSEPORT beside the others.
    gateway.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)


def _token_command(token: argparse.ArgumentParser) -> None:
    token.description = (
        f"{token.description} Signed with TOCSIN_JWT_SECRET, else with the secret `tocsin run` "
        "generated in the data folder. There is no --secret option: command lines are visible "
        "to every user of the machine."
    )
    token.add_argument("user_id", metavar="USER_ID")
    token.add_argument("--ttl", type=_positive, default=3600, help="seconds (default 3600)")
    _data_dir_option(token, "read when TOCSIN_JWT_SECRET is unset")


def _send_command(send: argparse.ArgumentParser) -> None:
    send.add_argument("--user", action="append", required=True, help="recipient; repeatable")
    send.add_argument("--type", required=True, help="e.g. message:received")
    send.add_argument("--title", required=True)
    send.add_argument("--body", default="")
    send.add_argument("--action-url")
    send.add_argument("--data", type=_json_object, help="a JSON object")
    send.add_argument("--idempotency-key", help="retrying with the same key stores nothing new")
    send.add_argument("--url", help="dispatcher URL (default: $TOCSIN_DISPATCHER_URL)")
    send.add_argument(
        "--key",
        help="producer key (default: $TOCSIN_PRODUCER_KEY, the first of $TOCSIN_PRODUCER_KEYS, "
        "else the data folder's); prefer the variable: other users can see command lines",
    )
    _data_dir_option(send, "read when no key is given or set")


def _environ(args: argparse.Namespace) -> Mapping[str, str]:
    """os.environ with the command's options applied over the variables they stand for."""
    overrides = {
        "TOCSIN_DATA_DIR": getattr(args, "data_dir", None),
        "TOCSIN_PRODUCER_KEY": getattr(args, "key", None),
        "TOCSIN_GATEWAY_PROCESSES": getattr(args, "processes", None),
    }
    chosen = {name: value for name, value in overrides.items() if value is not None}
    return {**os.environ, **chosen} if chosen else os.environ


def _known_error(exc: Exception) -> int | None:
    """The exit code of an error users cause (after printing it), or None for a bug.

    The classes are looked up among loaded modules, not imported: an exception cannot be of a
    class whose module was never loaded, and importing tocsin.embedded loads redis.
    """
    config = sys.modules.get("shared.config")
    embedded = sys.modules.get("tocsin.embedded")
    if config is not None and isinstance(exc, config.ConfigError):
        hint = f" ({STORE_HINT})" if exc.name in ("DATABASE_URL", "REDIS_URL") else ""
        print(f"tocsin: {exc}{hint}", file=sys.stderr)
        return EXIT_CONFIG
    if embedded is not None and isinstance(exc, embedded.EmbeddedError):
        print(f"tocsin: {exc}", file=sys.stderr)
        return 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args, _environ(args))
    except Exception as exc:
        code = _known_error(exc)
        if code is None:
            raise
        return code
