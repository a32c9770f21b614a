"""One build of both distributions per session, from a fresh clone of HEAD, as users build them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.packaging.support import Dists, build, run
from tests.support.processes import ROOT

STATIC = ROOT / "gateway" / "static"


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
    out = tmp_path_factory.mktemp("dist")
    build([clone, clone / "client"], out, tmp_path_factory.mktemp("build-logs"))
    return Dists(out)
