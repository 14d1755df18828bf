"""A site whose ClientApp raises: one line on the terminal, the traceback in the run dir."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.conftest import run_cli, script

pytestmark = pytest.mark.e2e

# fedlife-sim run's own path (runner.run under the CLI's one-line errors) on sites
# that exist already: `fedlife-sim run` makes its sites itself, with valid configs.
DRIVER = textwrap.dedent(
    """
    import sys
    from common.cli import one_line_errors
    from simulations.runner import run
    from simulations.spec import SimulationSpec
    spec = SimulationSpec(sites=3, rounds=1, sites_dir=sys.argv[1], run_dir=sys.argv[2])
    summary = one_line_errors(lambda: run(spec))()
    print(f"rounds {summary['rounds']}")
    """
)


def test_a_broken_site_config_is_one_line_not_a_worker_traceback(isolated_env, tmp_path: Path):
    made = run_cli(
        [script("fedlife-sim"), "sites", "--out", str(tmp_path), "--sites", "3"], isolated_env
    )
    assert made.returncode == 0, made.stderr[-3000:]
    broken = tmp_path / "sites" / "site-001" / "site.toml"
    broken.write_text(broken.read_text().replace("[site]", "[site", 1))  # invalid TOML
    run_dir = tmp_path / "run"
    result = run_cli(
        [sys.executable, "-c", DRIVER, str(tmp_path / "sites"), str(run_dir)], isolated_env
    )
    output = result.stdout + result.stderr
    shown = f"exit {result.returncode}\n{output[-5000:]}"
    assert "Traceback" not in output and "ray::" not in output, shown
    assert 'File "' not in output, shown  # no frame of any traceback
    failures = [line for line in output.splitlines() if "ClientApp failed" in line]
    assert failures, shown
    assert all(str(broken) in line for line in failures), shown  # names the broken file
    assert result.returncode == 0 and "rounds 1" in result.stdout, shown  # 2 sites trained
    kept = (run_dir / "worker-errors.log").read_text()
    assert "Traceback" in kept and str(broken) in kept  # nothing is lost
