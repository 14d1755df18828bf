"""Encrypted aggregation refuses what needs the sites' updates in the clear, up front."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from common.errors import ConfigError, EncryptionIncompatibleError
from common.run_config import HE_STRATEGIES, RunConfig
from simulations.cli import app

PLAINTEXT_STRATEGIES = ["fedmedian", "fedtrimmedavg", "krum", "bulyan", "fedadam", "fedyogi"]


@pytest.mark.parametrize("strategy", PLAINTEXT_STRATEGIES)
def test_he_refuses_strategies_that_read_updates(strategy):
    with pytest.raises(EncryptionIncompatibleError, match=f"cannot run strategy '{strategy}'"):
        RunConfig.from_flower({"he": True, "strategy": strategy})
    assert not RunConfig.from_flower({"strategy": strategy}).he  # fine without HE


@pytest.mark.parametrize("central_dp", ["server", "client"])
def test_he_refuses_central_dp(central_dp):
    with pytest.raises(EncryptionIncompatibleError, match="central DP"):
        RunConfig.from_flower({"he": True, "central-dp": central_dp})


def test_he_accepts_sums_and_refuses_a_warm_start():
    assert all(RunConfig.from_flower({"he": True, "strategy": s}).he for s in HE_STRATEGIES)
    with pytest.raises(EncryptionIncompatibleError, match="parent run"):
        RunConfig.from_flower({"he": True, "parent-run": "runs/old"})
    assert issubclass(EncryptionIncompatibleError, ConfigError)  # exit code 2 at every CLI


def test_sim_cli_refuses_he_with_krum_in_one_line_before_any_site(tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["run", "--he", "--strategy", "krum", "--sites", "3", "--run-dir", str(run_dir)]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot run strategy 'krum'" in lines[0], result.output
    assert not run_dir.exists()  # refused before the run directory or any site
