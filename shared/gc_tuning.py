"""The garbage collector after a server's start-up, for every long-lived Tocsin process.

Every socket or in-flight request holds many long-lived objects, so Python's default
thresholds (700, 10, 10) spent 20-32% of a gateway's CPU in the collector at 2,000 sockets.
Measured (tests/perf/gateway_load.py, 2,000 users): (2000, 10, 10) halves that with the same
gen-0 pause p99 (~8 ms CPU); (7000, 10, 10) cut it to 5% but tripled the gen-0 pause p99."""

from __future__ import annotations

import gc

GC_THRESHOLDS = (2000, 10, 10)


def settle_after_startup() -> None:
    """What start-up made (modules, the app, pools) lives as long as the process: frozen, so
    no collection walks it again; then the thresholds above."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
