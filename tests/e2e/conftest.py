"""Isolation for tests that start real Flower and Ray processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from tests.conftest import console_script, new_cli_env

ROOT = Path(__file__).resolve().parents[2]
script = console_script


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def isolated_env() -> Iterator[dict[str, str]]:
    """See :func:`isolated`."""
    with isolated() as env:
        yield env


@contextmanager
def isolated() -> Iterator[dict[str, str]]:
    """``new_cli_env`` with this venv first on PATH; afterwards, stop what was started
    with it and remove its Flower home and Ray temp dir. A module-scoped fixture that
    shares one run among several tests uses it directly."""
    env = new_cli_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    try:
        yield env
    finally:
        stop_processes_mentioning(env["FLWR_HOME"])
        stop_processes_mentioning(env["RAY_TMPDIR"])
        shutil.rmtree(env["FLWR_HOME"], ignore_errors=True)
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)


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


def run_cli(args: list[str], env: dict[str, str], timeout: int = 400):
    return subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
