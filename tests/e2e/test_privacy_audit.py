"""`fedlife-sim audit` as the README shows it: both trainings, both attacks, one verdict."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import run_cli, script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_audit_attacks_both_runs_and_the_accountant_bounds_the_dp_one(isolated_env, tmp_path):
    out = tmp_path / "audit"
    command = ["audit", "--canaries", "40", "--epsilon", "1", "--out", str(out), "--json"]
    result = run_cli([script("fedlife-sim"), *command], isolated_env)

    # Exit 1 would mean the attack proved more privacy loss than the accountant reports.
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures) == {"no_dp", "dp"}
    no_dp, dp = figures["no_dp"], figures["dp"]
    assert no_dp["accountant_epsilon"] is None  # no DP: no bound (infinite)
    assert 0 < dp["accountant_epsilon"] <= 1.0
    assert 0 <= dp["empirical_epsilon_lower_bound"] <= dp["accountant_epsilon"]
    assert all(0 <= run["auc"] <= 1 for run in (no_dp, dp))
    assert no_dp["test_accuracy"] > 0.8  # the same rows train both; only DP differs
    for name in ("no_dp", "dp"):
        summary = json.loads((out / name / "run" / "summary.json").read_text())
        assert summary["rounds"] == 3
