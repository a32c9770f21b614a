"""Child processes of `tocsin run`: started together, watched, stopped in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

import httpx

from shared.children import die_with_parent

POLL_INTERVAL = 0.1


class StopRequest:
    """SIGINT / SIGTERM, recorded instead of raised so that shutdown runs in order."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    @property
    def requested(self) -> bool:
        return bool(self.signals)


class Child:
    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = name
        # Own process group: Ctrl-C reaches only the supervisor, which stops children first.
        self.process = subprocess.Popen(
            list(args), env=dict(env), process_group=0, preexec_fn=die_with_parent(os.getpid())
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        return self.process.poll()

    def signal(self, sig: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)


def first_exited(children: Sequence[Child]) -> Child | None:
    return next((child for child in children if child.exited() is not None), None)


def wait_ready(
    children: Sequence[Child], urls: Sequence[str], stop: StopRequest, timeout: float
) -> str | None:
    """None once every URL answers 200; otherwise why not (a child died, a signal, timeout)."""
    pending = list(urls)
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while pending:
            if stop.requested:
                return "interrupted"
            dead = first_exited(children)
            if dead is not None:
                return f"{dead.name} exited with code {dead.exited()}"
            if time.monotonic() > deadline:
                return f"not ready after {timeout:.0f}s: {', '.join(pending)}"
            pending = [url for url in pending if not _answers(client, url)]
            if pending:
                time.sleep(POLL_INTERVAL)
    return None


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def watch(children: Sequence[Child], stop: StopRequest) -> Child | None:
    """Block until a signal (None) or until a child exits (that child)."""
    while not stop.requested:
        dead = first_exited(children)
        if dead is not None:
            return dead
        time.sleep(POLL_INTERVAL)
    return None


def stop_all(children: Sequence[Child], stop: StopRequest, grace: float) -> None:
    """SIGTERM every child, wait up to `grace` (cut short by another signal), then SIGKILL."""
    signals_seen = len(stop.signals)
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(child.exited() is None for child in children):
        if time.monotonic() > deadline or len(stop.signals) > signals_seen:
            break
        time.sleep(POLL_INTERVAL)
    for child in children:
        if child.exited() is None:
            print(f"tocsin: {child.name} did not stop in time; killing it", file=sys.stderr)
            child.signal(signal.SIGKILL)
            child.process.wait()
