"""Real Prometheus for tests: deploy/prometheus/prometheus.yml rendered to scrape loopback
targets every second, with its own storage folder, stopped by PID."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.processes import ROOT, wait_ready
from tests.support.services import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CONFIG_DIR = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], cwd=CONFIG_DIR, capture_output=True, text=True, timeout=60
    )


def render(targets: dict[str, list[str]]) -> dict[str, Any]:
    """The shipped config with its jobs' targets replaced and a 1 s scrape interval."""
    config: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(CONFIG_DIR / name) for name in config["rule_files"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(targets) <= set(jobs), f"no such job in prometheus.yml: {set(targets) - set(jobs)}"
    for name, addresses in targets.items():
        jobs[name].pop("dns_sd_configs", None)  # compose's service names: loopback here
        jobs[name]["static_configs"] = [{"targets": addresses}]
    config["scrape_configs"] = [jobs[name] for name in targets]
    return config


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def value(self, expr: str) -> float | None:
        """The single sample of an instant query, or None when it has none."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, expr: str, expected: float, within: float = 20) -> None:
        deadline = time.monotonic() + within
        seen = None
        while time.monotonic() < deadline:
            seen = self.value(expr)
            if seen == expected:
                return
            time.sleep(0.25)
        raise AssertionError(f"{expr} = {seen} after {within}s, expected {expected}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def run(folder: Path, targets: dict[str, list[str]], timeout: float = 30) -> Prometheus:
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump(render(targets)))
    port = free_port()
    log_path = folder / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_ready(process, f"{prometheus.url}/-/ready", timeout, "prometheus", prometheus.log)
    except RuntimeError:
        prometheus.stop()
        raise
    return prometheus
