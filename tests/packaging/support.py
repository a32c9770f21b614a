"""Building the distributions and running what they install, for the packaging tests."""

from __future__ import annotations

import email.parser
import os
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from tests.support.processes import ServerProcess, wait_ready

VERSION = "0.1.0"
COMMAND_TIMEOUT = 300.0


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would let the checkout or the dev venv leak in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@dataclass(frozen=True)
class Dists:
    """The folder `python -m build` wrote both distributions to."""

    folder: Path

    def one(self, name: str) -> Path:
        found = sorted(self.folder.glob(name))
        assert len(found) == 1, f"expected one {name} in {self.folder}: {found}"
        return found[0]

    @property
    def server_wheel(self) -> Path:
        return self.one(f"tocsin-{VERSION}-py3-none-any.whl")

    @property
    def client_wheel(self) -> Path:
        return self.one(f"tocsin_client-{VERSION}-py3-none-any.whl")


@dataclass(frozen=True)
class Venvs:
    image: Path  # deploy/install-image.sh's install of both wheels
    client: Path  # the client wheel alone, as a producer installs it


def run_parallel(commands: Sequence[Sequence[str | Path]], log_dir: Path) -> None:
    """Run the commands at once (each waits mostly on pip or the build backend); all must pass."""
    started = []
    for index, command in enumerate(commands):
        log_path = log_dir / f"command-{index}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(arg) for arg in command],
                env=clean_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append((command, process, log_path))
    failed = []
    for command, process, log_path in started:
        if process.wait(COMMAND_TIMEOUT) != 0:
            failed.append(f"{command}:\n{log_path.read_text(errors='replace')}")
    assert not failed, "\n\n".join(failed)


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """Requires-Dist of a wheel's METADATA, parsed."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.parser.Parser().parsestr(archive.read(metadata).decode())
    return [Requirement(line) for line in message.get_all("Requires-Dist") or []]


def installed(venv: Path) -> set[str]:
    """Normalised names of the distributions installed in a venv."""
    listing = run([venv / "bin" / "python", "-m", "pip", "list", "--format=freeze"]).stdout
    return {line.split("==")[0].lower().replace("_", "-") for line in listing.splitlines()}


def start_installed(
    venv: Path, role: str, env: Mapping[str, str], port: int, log_dir: Path, cwd: Path
) -> ServerProcess:
    """Run the venv's own `tocsin ROLE` (not the checkout's) until GET /readyz answers 200."""
    log_path = log_dir / f"{role}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "tocsin"), role],
            cwd=cwd,
            env=clean_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, port, log_path)
    try:
        wait_ready(process, server.url + "/readyz", 30, role, server.log)
    except RuntimeError:
        server.kill()
        raise
    return server
