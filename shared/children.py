"""Child processes that do not outlive the process that started them (`tocsin run`'s
services, `tocsin gateway --processes`' nodes)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> Callable[[], None]:
    """A `preexec_fn`: the child gets SIGTERM (and drains) if `parent` is killed (Linux only)."""

    def prepare() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os.kill(os.getpid(), signal.SIGTERM)

    return prepare


def stop(process: subprocess.Popen[bytes], timeout: float, kill_wait: float = 10) -> int:
    """SIGTERM, then SIGKILL if the child is still running after `timeout` seconds; its exit
    status (None never: the wait after a kill is bounded by `kill_wait`, then raises)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(kill_wait)
    return process.returncode
