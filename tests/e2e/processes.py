"""The production process layout, read from docker-compose.yml: one source for the commands.

docker-compose.yml says which command each service runs, which ones wait for
which, and how the web service's health is checked. The layout test
(tests/e2e/test_production_layout.py) and the file checks
(tests/test_deployment_files.py) both read it through this module, so the
processes the test starts are the ones a deployment starts, changed only as
a machine without Docker needs: the commands come from this virtual
environment's ``bin/``, listen on 127.0.0.1 and on free ports.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CONTAINER_WEB_PORT = "5000"
CONTAINER_TWILIO_PORT = "5001"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def command(name: str) -> list[str]:
    """The service's command exactly as docker-compose.yml gives it."""
    value = service(name)["command"]
    assert isinstance(value, list), f"{name}: write the command as a list (exec form)"
    return [str(part) for part in value]


def healthcheck(name: str) -> list[str]:
    """The service's healthcheck command, without the leading ``CMD``."""
    test = service(name)["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return [str(part) for part in test[1:]]


def local(argv: Sequence[str], ports: Mapping[str, int] | None = None) -> list[str]:
    """A container's command as this machine runs it.

    The program comes from this Python's ``bin/`` (``python`` is this Python),
    ``0.0.0.0`` becomes ``127.0.0.1`` and each container port in ``ports``
    (as an argument or inside a URL) becomes the local one.
    """
    bin_dir = Path(sys.executable).parent
    program = argv[0]
    first = sys.executable if program == "python" else str(bin_dir / program)
    out = [first]
    for part in argv[1:]:
        part = part.replace("0.0.0.0", "127.0.0.1")
        for container, port in (ports or {}).items():
            if part == container:
                part = str(port)
            part = part.replace(f"127.0.0.1:{container}", f"127.0.0.1:{port}")
        out.append(part)
    return out


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as ``docker compose stop`` sends; SIGKILL if it will not go."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=timeout)
        return self.popen.returncode


def start(name: str, argv: list[str], env: Mapping[str, str], folder: Path) -> Process:
    log = folder / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(argv, env=dict(env), cwd=folder, stdout=out, stderr=out)
    return Process(name, popen, log)
