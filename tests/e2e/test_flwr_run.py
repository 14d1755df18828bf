"""`flwr run .` on the project: Flower's own local SuperLink runs the same apps."""

from __future__ import annotations

import json
import sys

import pytest

from tests.e2e.conftest import free_port, run_cli, script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Flower gives the local SuperLink it starts a fixed 15 s to answer, then kills it
# (flwr.cli.constant.LOCAL_SUPERLINK_STARTUP_TIMEOUT). Beside the slow tier's heaviest
# tests its imports alone took longer (twice in `make test-slow`), and once killed, a
# second try failed too. So the flwr CLI runs here with that one constant raised.
FLWR = "import sys; import flwr.cli.constant as c; c.LOCAL_SUPERLINK_STARTUP_TIMEOUT = {}; "
FLWR += "from flwr.cli.app import app; sys.argv[0] = 'flwr'; sys.exit(app())"
START_DEADLINE_S = 300.0


def run_flwr(args: list[str], env: dict[str, str], *, deadline_s: float = START_DEADLINE_S):
    """`flwr ARGS`, the local SuperLink given ``deadline_s`` to start."""
    return run_cli([sys.executable, "-c", FLWR.format(deadline_s), *args], env)


@pytest.fixture
def env(isolated_env) -> dict[str, str]:
    """The test's own environment, with free ports for Flower's local SuperLink."""
    return {
        **isolated_env,
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(free_port()),
        "FLWR_LOCAL_CONTROL_API_PORT": str(free_port()),
    }


def test_a_superlink_start_deadline_given_to_flwr_is_the_one_flower_keeps(env):
    """The raised deadline reaches Flower: the smallest one fails as Flower says."""
    late = run_flwr(
        ["federation", "simulation-config", "--num-supernodes", "3"], env, deadline_s=0.0
    )
    assert late.returncode != 0
    assert "Failed to start local SuperLink within 0s" in late.stdout + late.stderr


def test_flwr_run_dot_trains_the_virtual_sites(env, tmp_path):
    made = run_cli([script("fedlife-sim"), "sites", "--out", str(tmp_path), "--sites", "3"], env)
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "models").exists()  # sites are no run: no empty models/
    configured = run_flwr(["federation", "simulation-config", "--num-supernodes", "3"], env)
    assert configured.returncode == 0, configured.stdout + configured.stderr

    run_config = (
        f'sites-dir="{tmp_path / "sites"}" test-data="{tmp_path / "test.csv"}" '
        f'run-dir="{tmp_path / "run"}" num-server-rounds=2'
    )
    result = run_flwr(["run", ".", "local", "--stream", "--run-config", run_config], env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["rounds"] == 2
    # It ends, as fedlife-sim run does, with the run's one-line summary.
    assert "after 2 rounds" in result.stdout + result.stderr
    assert f"run directory {tmp_path / 'run'}" in result.stdout + result.stderr
    assert sorted(summary["epsilon_spent"]) == ["site-000", "site-001", "site-002"]
    assert all(0 < e <= 3.0 for e in summary["epsilon_spent"].values())
