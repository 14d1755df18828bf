"""Isolation for tests that start real Flower and Ray processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]


def script(name: str) -> str:
    """A console script of this venv (the one running the tests)."""
    return str(Path(sys.executable).parent / name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def isolated_env() -> Iterator[dict[str, str]]:
    """Own FLWR_HOME and RAY_TMPDIR (short: Ray's socket paths are length-capped)."""
    flwr_home = tempfile.mkdtemp(prefix="flwr-")
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = {
        **os.environ,
        "FLWR_HOME": flwr_home,
        "RAY_TMPDIR": ray_tmp,
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    yield env
    stop_processes_mentioning(flwr_home)
    stop_processes_mentioning(ray_tmp)
    shutil.rmtree(flwr_home, ignore_errors=True)
    shutil.rmtree(ray_tmp, ignore_errors=True)


def stop_processes_mentioning(unique_path: str) -> None:
    """Stop, by PID, processes this test started: their command line holds its temp dir.

    Flower's local SuperLink detaches itself, so its PID is found by the private
    FLWR_HOME it was started with; nobody else's process can carry that path.
    """
    for process in psutil.process_iter(["pid", "cmdline"]):
        if unique_path in " ".join(process.info["cmdline"] or []):
            try:
                os.kill(process.info["pid"], signal.SIGTERM)
                process.wait(timeout=10)
            except (psutil.Error, OSError):
                pass


def run_cli(args: list[str], env: dict[str, str], timeout: int = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
