"""The garbage collector after a server's start-up, for every long-lived Tocsin process.

Every socket or in-flight request holds many long-lived objects, so Python's default
thresholds (700, 10, 10) spent 20-32% of a gateway's CPU in the collector at 2,000 sockets.
Measured (tests/perf/gateway_load.py, 2,000 users): (2000, 10, 10) halves that with the same
gen-0 pause p99 (~8 ms CPU); (7000, 10, 10) cut it to 5% but tripled the gen-0 pause p99.
The third threshold is 100, not 10: a full collection walks every socket's objects, so while
10,000 sockets connected, the 5 full collections took 0.74 s of CPU (7% of the node's); with
100 there were 2, taking 0.04 s. The price: garbage in the oldest generation (a socket gone
after minutes) waits for the next full collection, which now comes after 100 collections of
the middle one (about 2 million allocations), not 10."""

from __future__ import annotations

import gc

GC_THRESHOLDS = (2000, 10, 100)


def settle_after_startup() -> None:
    """What start-up made (modules, the app, pools) lives as long as the process: frozen, so
    no collection walks it again; then the thresholds above."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
