"""The browser package as npm users get it: `npm pack` builds it from a clean copy of web/
(prepack), the tarball holds only what a user needs, and a fresh Vite + React app installs it,
type-checks against its .d.ts files and builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT

pytestmark = pytest.mark.packaging

WEB = ROOT / "web"
NPM_FLAGS = ["--prefer-offline", "--no-audit", "--no-fund"]
# The app pins what web/ itself installs: versions known to run on this Node, already cached.
APP_PACKAGES = ("react", "react-dom", "vite", "@types/react", "@types/react-dom")
ENTRY_FILES = ("dist/tocsin.js", "dist/tocsin-react.js", "dist/tocsin-bell.js", "dist/tocsin.css")
TYPE_FILES = (
    "dist/types/client/index.d.ts",
    "dist/types/react/index.d.ts",
    "dist/types/element/index.d.ts",
)


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm not found: install Node.js 20+ (.ci/run does)")
    if not (WEB / "node_modules").is_dir():
        pytest.fail("web/node_modules missing: run `make install` (npm ci in web/)")
    return npm


def _run(args: list[str], cwd: Path, timeout: float) -> str:
    env = {**os.environ, "npm_config_update_notifier": "false"}
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{output}"
    return output


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`npm pack` in a copy of web/ without dist/, so only prepack can have built what ships."""
    npm = _npm()
    root = tmp_path_factory.mktemp("npm-pack")
    copy = root / "web"
    shutil.copytree(WEB, copy, ignore=shutil.ignore_patterns("node_modules", "dist", "*.tgz"))
    (copy / "node_modules").symlink_to(WEB / "node_modules", target_is_directory=True)
    out = root / "out"
    out.mkdir()
    _run([npm, "pack", "--pack-destination", str(out), *NPM_FLAGS], copy, timeout=90)
    (packed,) = out.glob("*.tgz")
    yield packed


def _members(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as archive:
        files = {}
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files[member.name.removeprefix("package/")] = extracted.read()
        return files


def test_tarball_holds_only_what_a_user_needs(tarball: Path) -> None:
    files = _members(tarball)
    assert tarball.name == "tocsin-web-0.1.0.tgz"
    for required in ("package.json", "README.md", *ENTRY_FILES, *TYPE_FILES):
        assert required in files, f"{required} missing from {sorted(files)}"
    unwanted = [
        name
        for name in files
        if name.startswith(("src/", "test/", "node_modules/"))
        or (name.endswith((".ts", ".tsx", ".mjs")) and not name.endswith(".d.ts"))
        or name.startswith(("tsconfig", "vitest", "package-lock"))
    ]
    assert unwanted == []
    assert files["dist/tocsin-react.js"].startswith(b'"use client";')


def _export_targets(exports: dict[str, Any]) -> list[str]:
    targets: list[str] = []
    for value in exports.values():
        targets += [value] if isinstance(value, str) else list(value.values())
    return targets


def test_manifest_points_only_at_shipped_files(tarball: Path) -> None:
    files = _members(tarball)
    manifest = json.loads(files["package.json"])
    assert manifest["type"] == "module"
    assert {"prepack", "build"} <= manifest["scripts"].keys()
    assert set(manifest["exports"]) >= {".", "./client", "./react", "./element", "./tocsin.css"}
    shipped = [manifest["main"], manifest["types"], *_export_targets(manifest["exports"])]
    missing = [path for path in shipped if path.removeprefix("./") not in files]
    assert missing == []
    assert manifest["peerDependencies"].keys() == {"react", "react-dom"}
    assert all(meta == {"optional": True} for meta in manifest["peerDependenciesMeta"].values())
    assert "./dist/tocsin-bell.js" in manifest["sideEffects"]
    assert "dependencies" not in manifest


def _locked_versions() -> dict[str, str]:
    locked = json.loads((WEB / "package-lock.json").read_text())["packages"]
    return {name: locked[f"node_modules/{name}"]["version"] for name in APP_PACKAGES}


MAIN_TSX = """\
import { createRoot } from "react-dom/client";
import { TocsinClient } from "@tocsin/web";
import { NotificationBell, Toaster, TocsinProvider, useNotifications } from "@tocsin/web/react";
import { TocsinBellElement } from "@tocsin/web/element";
import "@tocsin/web/tocsin.css";

function Unread() {
  const { unreadCount, status } = useNotifications();
  return <span>{status}: {unreadCount}</span>;
}

const client = new TocsinClient({ url: "ws://127.0.0.1:8080/v1/ws", token: async () => "t" });
const bell: TocsinBellElement = document.createElement("tocsin-bell");
bell.setAttribute("gateway-url", "http://127.0.0.1:8080");
document.body.append(bell);
createRoot(document.getElementById("root")!).render(
  <TocsinProvider client={client}>
    <Unread />
    <NotificationBell />
    <Toaster />
  </TocsinProvider>,
);
"""

INDEX_HTML = """\
<!doctype html>
<html><head><meta charset="utf-8"><title>app</title></head>
<body><div id="root"></div><script type="module" src="/src/main.tsx"></script></body></html>
"""

# Vite reads `jsx` from here too, so JSX compiles with the automatic runtime.
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "ESNext",
        "moduleResolution": "bundler",
        "lib": ["ES2022", "DOM", "DOM.Iterable"],
        "jsx": "react-jsx",
        "strict": True,
        "noEmit": True,
        "types": ["vite/client"],
    },
    "include": ["src"],
}


def _write_app(app: Path) -> None:
    versions = _locked_versions()
    package = {
        "name": "tocsin-vite-check",
        "private": True,
        "type": "module",
        "dependencies": {name: versions[name] for name in ("react", "react-dom")},
        "devDependencies": {
            name: versions[name] for name in ("vite", "@types/react", "@types/react-dom")
        },
    }
    (app / "src").mkdir(parents=True)
    (app / "package.json").write_text(json.dumps(package, indent=2))
    (app / "tsconfig.json").write_text(json.dumps(TSCONFIG, indent=2))
    (app / "index.html").write_text(INDEX_HTML)
    (app / "src" / "main.tsx").write_text(MAIN_TSX)


def test_fresh_vite_react_app_installs_and_builds(tarball: Path, tmp_path: Path) -> None:
    app = tmp_path / "app"
    _write_app(app)
    _run([_npm(), "install", str(tarball), *NPM_FLAGS], app, timeout=90)
    _run([str(WEB / "node_modules" / ".bin" / "tsc"), "-p", "."], app, timeout=60)
    _run([str(app / "node_modules" / ".bin" / "vite"), "build"], app, timeout=60)
    scripts = "".join(path.read_text() for path in (app / "dist" / "assets").glob("*.js"))
    styles = "".join(path.read_text() for path in (app / "dist" / "assets").glob("*.css"))
    assert '"tocsin.v1"' in scripts  # the client's WebSocket subprotocol
    assert '"tocsin-bell"' in scripts  # the element's registration
    assert ".tocsin-bell" in styles
