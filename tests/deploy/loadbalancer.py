"""Real nginx for tests: deploy/nginx.conf rendered with loopback addresses, run in the
foreground with its own prefix, pid and logs in a temporary folder, stopped by PID."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.processes import ROOT

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONF = ROOT / "deploy" / "nginx.conf"
MARKER = re.compile(r"#\s*tocsin:([a-z-]+)\s*$")


def render(text: str, replacements: dict[str, list[str]]) -> str:
    """Replace every line marked `# tocsin:<name>` by replacements[name] (at the first one).

    A marker with no replacement keeps its lines; a replacement with no marker is an error."""
    out: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        found = MARKER.search(line)
        name = found.group(1) if found else None
        if name is None or name not in replacements:
            out.append(line)
            continue
        if name not in seen:
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}{directive}" for directive in replacements[name]]
            seen.add(name)
    missing = set(replacements) - seen
    assert not missing, f"no '# tocsin:' marker for {sorted(missing)} in nginx.conf"
    return "\n".join(out) + "\n"


def check(conf: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` with a private prefix and pid file (no root-owned paths touched)."""
    return subprocess.run(
        [NGINX, "-t", *_paths(conf, prefix)], capture_output=True, text=True, timeout=30
    )


def _paths(conf: Path, prefix: Path) -> list[str]:
    return ["-p", f"{prefix}/", "-e", "stderr", "-c", str(conf), "-g", f"pid {prefix}/nginx.pid;"]


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    public_port: int
    internal_port: int
    log_path: Path

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.public_port}/v1/ws"

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.internal_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def run(
    folder: Path, gateways: list[int], dispatchers: list[int], public: int, internal: int
) -> Nginx:
    """Start nginx in front of the given loopback ports and wait until both listeners answer."""
    conf = folder / "nginx.conf"
    conf.write_text(
        render(
            CONF.read_text(),
            {
                "gateway-servers": [_server(p) for p in gateways],
                "dispatcher-servers": [_server(p) for p in dispatchers],
                "public-listen": [f"listen 127.0.0.1:{public};"],
                "internal-listen": [f"listen 127.0.0.1:{internal};"],
            },
        )
    )
    log_path = folder / "nginx.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [NGINX, *_paths(conf, folder)[:-1], f"pid {folder}/nginx.pid; daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    nginx = Nginx(process, public, internal, log_path)
    _wait_listening(nginx, [nginx.public_url, nginx.internal_url])
    return nginx


def _server(port: int) -> str:
    return f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;"


def _wait_listening(nginx: Nginx, urls: list[str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nginx.process.poll() is not None:
            raise RuntimeError(f"nginx exited with {nginx.process.returncode}:\n{nginx.log()}")
        try:
            for url in urls:
                httpx.get(url + "/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    nginx.stop()
    raise RuntimeError(f"nginx not listening after {timeout}s:\n{nginx.log()}")
