"""The short form of `make chaos`, run by `make test`: a small cluster, ~30 tabs, a few
seconds per fault; every scenario must lose, duplicate, reorder and misroute nothing and
recover within 5 s (a blackholed publish within 2 s; a tab on a gateway whose Redis link
stalls waits at most 5 s for anything). `make chaos` runs them all at a moderate load
(docs/chaos.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.ledger import markdown
from tests.chaos.runner import SHORT, run_scenario
from tests.chaos.scenarios import BY_NAME

SHORT_FORM = [
    "gateway-kill-9",
    "dispatcher-kill-9",
    "pubsub-kill",
    "reconnect-storm",
    "token-expiry",
    "gateway-redis-stall",
    "dispatcher-redis-blackhole",
    "slow-consumers",
]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", SHORT_FORM)
async def test_short_scenario_loses_nothing(name: str, database_url: str, tmp_path: Path) -> None:
    scenario = BY_NAME[name]
    figures = await run_scenario(scenario, SHORT, tmp_path, database_url)
    table = markdown([figures]) + "\n" + "\n".join(figures.examples)
    assert figures.accepted > 0 and figures.refused == 0, table
    assert (figures.lost, figures.dup, figures.out_of_order, figures.foreign) == (0, 0, 0, 0), table
    assert figures.recovery_s is not None, table
    assert figures.recovery_s <= scenario.recovery_bound, table
    if scenario.max_wait_bound is not None:
        assert figures.max_wait_s is not None and figures.max_wait_s <= scenario.max_wait_bound, (
            table
        )
