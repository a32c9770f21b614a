"""Garbage-collector probe for a measured process: put this folder on its PYTHONPATH
(tests/perf/gateway_load.py --env PYTHONPATH=tests/perf/gcprobe). Every second it writes
/tmp/gcprobe-<pid>.json: collector CPU time and its share of the process CPU, and the CPU
pause per collection (p50, p99, max) by generation. CPU time, not wall time: a busy shared
machine does not inflate it."""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from typing import Any

_started = [0.0]
_pauses: dict[int, list[float]] = {}


def _collected(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.thread_time()
    else:
        _pauses.setdefault(info["generation"], []).append(time.thread_time() - _started[0])


def _report() -> dict[str, Any]:
    times = os.times()
    cpu = times.user + times.system
    spent = sum(sum(p) for p in list(_pauses.values()))
    by_gen = {}
    for gen, pauses in list(_pauses.items()):
        ordered = sorted(pauses)
        by_gen[gen] = {
            "n": len(ordered),
            "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2),
        }
    return {"cpu_s": cpu, "gc_s": spent, "gc_share": spent / max(cpu, 1e-9), "by_gen": by_gen}


def _write_forever() -> None:
    while True:
        time.sleep(1)
        with open(f"/tmp/gcprobe-{os.getpid()}.json", "w") as out:
            json.dump(_report(), out)


gc.callbacks.append(_collected)
threading.Thread(target=_write_forever, daemon=True).start()
