"""The `tocsin` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.config import ConfigError
from tocsin.embedded import EmbeddedError

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

    return serve_gateway(environ)


def _migrate(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from tocsin.shell import migrate

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

    command(
        "run",
        _run,
        "Run a whole node: gateway and dispatcher, with embedded PostgreSQL and Redis "
        "when DATABASE_URL / REDIS_URL are unset.",
    )
    command("gateway", _gateway, "Run one gateway node (browser WebSockets and REST).")
    command("dispatcher", _dispatcher, "Run one dispatcher (the producers' HTTP API).")
    command(
        "migrate",
        _migrate,
        "Apply pending schema migrations to DATABASE_URL (or to the embedded database).",
    )
    token = command("token", _token, "Print a browser JWT for a user (HS256).")
    token.add_argument("user_id", metavar="USER_ID")
    token.add_argument("--ttl", type=_positive, default=3600, help="seconds (default 3600)")
    send = command("send", _send, "Send a notification through the dispatcher.")
    send.add_argument("--user", action="append", required=True, help="recipient; repeatable")
    send.add_argument("--type", required=True, help="e.g. message:received")
    send.add_argument("--title", required=True)
    send.add_argument("--body", default="")
    send.add_argument("--action-url")
    send.add_argument("--data", type=_json_object, help="a JSON object")
    send.add_argument("--idempotency-key", help="retrying with the same key stores nothing new")
    send.add_argument("--url", help="dispatcher URL (default: $TOCSIN_DISPATCHER_URL)")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args, os.environ)
    except ConfigError as exc:
        hint = f" ({STORE_HINT})" if exc.name in ("DATABASE_URL", "REDIS_URL") else ""
        print(f"tocsin: {exc}{hint}", file=sys.stderr)
        return EXIT_CONFIG
    except EmbeddedError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return 1
