"""No test goes unrun: `make test` leaves out the slow tier, `make test-slow` runs
exactly it, and CI runs both."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def marker_expressions(target: str) -> list[str]:
    """The `-m` expressions of every pytest call `make TARGET` would run."""
    dry_run = subprocess.run(
        ["make", "-n", "--always-make", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return re.findall(r'-m pytest .*?-m "([^"]+)"', dry_run)


def test_make_test_and_make_test_slow_split_the_suite_in_two():
    assert marker_expressions("test") == ["not slow"]
    assert sorted(marker_expressions("test-slow")) == ["slow and deploy", "slow and not deploy"]


def test_ci_runs_both_tiers():
    steps = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line]
    assert steps[-2:] == ["make test", "make test-slow"]
