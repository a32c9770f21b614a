"""One build of both distributions per session, from a fresh clone of HEAD, as users build them."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.packaging.support import Dists, Venvs, run, run_parallel
from tests.support.processes import ROOT

STATIC = ROOT / "gateway" / "static"
SCRIPT = ROOT / "deploy" / "install-image.sh"


def fresh_clone(target: Path) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git is required for the packaging tests (.ci/run installs it)")
    run(["git", "clone", "--quiet", ROOT, target])
    return target


@pytest.fixture(scope="session")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of HEAD (committed content only) with the browser files of this checkout.

    A clone lacks gitignored files, and gateway/static/ is gitignored: it is built by
    `cd web && npm run build` (`make install` does it), so it is copied from the checkout
    here, as a release build would run `npm run build` in the clone first."""
    if not (STATIC / "tocsin.js").is_file():
        pytest.fail(f"{STATIC} is not built: run `make install` (or `cd web && npm run build`)")
    target = fresh_clone(tmp_path_factory.mktemp("clone") / "tocsin")
    shutil.copytree(STATIC, target / "gateway" / "static")
    return target


@pytest.fixture(scope="session")
def dists(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """`python -m build` (the sdist, then the wheel from that sdist) of both distributions."""
    out = tmp_path_factory.mktemp("dist")
    build: list[str | Path] = [sys.executable, "-m", "build", "--outdir", out]
    run_parallel([[*build, clone], [*build, clone / "client"]], tmp_path_factory.mktemp("logs"))
    return Dists(out)


@pytest.fixture(scope="session")
def venvs(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Venvs:
    """Both fresh virtual environments, installed at once (pip mostly waits on I/O)."""
    folder = tmp_path_factory.mktemp("venvs")
    made = Venvs(image=folder / "opt-tocsin", client=folder / "producer")
    python = made.client / "bin" / "python"
    venv = shlex.join([sys.executable, "-m", "venv", str(made.client)])
    pip = shlex.join([str(python), "-m", "pip", "install", "--quiet", str(dists.client_wheel)])
    # As the Dockerfile runs the script: with sh, no exec bit needed.
    image: list[str | Path] = ["sh", SCRIPT, dists.folder, made.image]
    run_parallel([image, ["sh", "-c", f"{venv} && {pip}"]], folder)
    return made
