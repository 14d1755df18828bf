"""Fixtures shared by the whole suite: running the console scripts as subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CLI_TIMEOUT_S = 120

# One Ray worker per simulation: the suite runs several simulations at once on a small
# machine, where each extra worker costs its imports (torch, Opacus) and buys nothing.
os.environ.setdefault("FEDLIFE_SIM_CPUS", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests first (a stable sort: modules keep their order).

    Each pytest-xdist worker takes one module at a time in this order: the long
    end-to-end modules then start early and the many short unit tests fill the gaps at
    the end, instead of one worker running a long module alone while the other idles.
    """
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


def console_script(name: str) -> str:
    """The console script ``name`` of the venv running the tests (else the one on PATH)."""
    sibling = Path(sys.executable).parent / name
    if sibling.exists():
        return str(sibling)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"console script {name} not found next to {sys.executable} or on PATH")
    return found


@pytest.fixture
def cli_env() -> Iterator[dict[str, str]]:
    """Environment for a CLI subprocess: its own Flower home and Ray temp dir.

    RAY_TMPDIR lies directly under /tmp: Ray's socket paths are length-capped.
    FEDLIFE_DEBUG is dropped (it turns one-line errors into tracebacks), and colour
    is off and the console wide, so the output is plain text that does not wrap.
    """
    env = new_cli_env()
    yield env
    shutil.rmtree(env["FLWR_HOME"], ignore_errors=True)
    shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)


def new_cli_env() -> dict[str, str]:
    """A CLI subprocess environment with a fresh Flower home and Ray temp dir (see
    :func:`cli_env`); the caller removes both."""
    env = {
        **os.environ,
        "FLWR_HOME": tempfile.mkdtemp(prefix="flwr-"),
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray-", dir="/tmp"),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    for name in ("FEDLIFE_DEBUG", "FORCE_COLOR"):
        env.pop(name, None)
    return env


@pytest.fixture
def cli(cli_env: dict[str, str], tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli("fedlife-site", "prepare", "-c", path)``: run a console script.

    It runs in ``tmp_path`` (unless ``cwd`` is given) with :func:`cli_env`.
    """

    def run(
        script: str, *args: str | os.PathLike[str], cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [console_script(script), *map(str, args)],
            env=cli_env,
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )

    return run


@pytest.fixture
def assert_one_line_error() -> Callable[..., str]:
    """Check a failed CLI call: exit != 0, one ``error:`` line naming ``needles``."""

    def check(result: subprocess.CompletedProcess[str], *needles: str) -> str:
        shown = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert result.returncode != 0, shown
        assert "Traceback" not in result.stdout + result.stderr, shown
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].strip(), shown
        line = lines[0]
        assert line.startswith("error:"), shown
        for needle in needles:
            assert needle in line, f"{needle!r} not in the error line\n{shown}"
        return line

    return check
