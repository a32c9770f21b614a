"""`make chaos`: every scenario at a moderate load, a Markdown table, JSON in test-artifacts/.

python -m tests.chaos [--short] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.ledger import Figures, markdown
from tests.chaos.runner import FULL, SHORT, run_scenario
from tests.chaos.scenarios import BY_NAME, SCENARIOS
from tests.support import services
from tests.support.processes import ROOT

RESULTS = ROOT / "test-artifacts" / "chaos"


async def run_all(names: list[str], short: bool, database_url: str) -> list[Figures]:
    load = SHORT if short else FULL
    rows = []
    with tempfile.TemporaryDirectory(prefix="tocsin-chaos-") as scratch:
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            figures = await run_scenario(BY_NAME[name], load, Path(scratch) / name, database_url)
            print(markdown([figures]).splitlines()[-1], file=sys.stderr, flush=True)
            rows.append(figures)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the short form's load")
    parser.add_argument("--only", nargs="+", choices=list(BY_NAME), help="scenarios to run")
    args = parser.parse_args()
    names = args.only or [s.name for s in SCENARIOS]
    # Outside the event loop: finding the database may start an embedded one (asyncio.run).
    rows = asyncio.run(run_all(names, args.short, services.database_url()))
    print(markdown(rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    document = json.dumps([r.to_json() for r in rows], indent=2)
    for path in (RESULTS / f"chaos-{stamp}.json", RESULTS / "latest.json"):
        path.write_text(document + "\n")
    print(f"\nJSON: {RESULTS / 'latest.json'}")
    failed = [r for r in rows if r.lost or r.dup or r.out_of_order or r.foreign]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
