"""Build hook of the `tocsin` server distribution: refuse to build without the browser files.

gateway/static/ is built by `cd web && npm run build` and is not tracked by git, so a build
from a clone that skipped that step would silently ship a gateway without its browser client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

STATIC = Path("gateway") / "static"
REQUIRED = ("tocsin.js", "demo.html")


class StaticFilesHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":  # `make install` installs before it builds the browser files
            return
        static = Path(self.root) / STATIC
        missing = [name for name in REQUIRED if not (static / name).is_file()]
        if missing:
            raise RuntimeError(
                f"{STATIC}/ lacks {', '.join(missing)}: build the browser files first "
                f"(`cd web && npm ci && npm run build`), then build the {self.target_name} again"
            )
