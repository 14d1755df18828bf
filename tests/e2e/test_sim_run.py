"""`fedlife-sim run` end to end: real Flower simulation engine on a private Ray."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.e2e.conftest import run_cli, script

pytestmark = pytest.mark.e2e


def sim_run(env, run_dir: Path, *extra: str) -> dict:
    result = run_cli(
        [script("fedlife-sim"), "run", "--sites", "3", "--json", "--run-dir", str(run_dir), *extra],
        env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_dp_run_writes_a_complete_run_dir_within_budget(isolated_env, tmp_path):
    summary = sim_run(isolated_env, tmp_path / "run", "--rounds", "3", "--seed", "1")

    assert summary["rounds"] == 3
    assert summary["run_dir"] == str(tmp_path / "run")
    assert 0.5 < summary["test_accuracy"] <= 1.0
    assert summary["wall_s"] > 0
    assert sorted(summary["epsilon_spent"]) == ["site-000", "site-001", "site-002"]
    for spent in summary["epsilon_spent"].values():
        assert 0.5 * 3.0 < spent <= 3.0  # the plan spends the budget, never more

    run_dir = tmp_path / "run"
    rounds = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    for record in rounds:
        assert {p["site"] for p in record["participants"]} == set(summary["epsilon_spent"])
        assert all(p["table_version"] >= 0 for p in record["participants"])
        assert record["central"]["accuracy"] > 0
    epsilons = [
        [p["epsilon"] for p in sorted(r["participants"], key=lambda p: p["site"])] for r in rounds
    ]
    assert all(a < b for first, last in zip(epsilons, epsilons[1:]) for a, b in zip(first, last))

    model = torch.load(run_dir / "model.pt")
    assert not any(key.startswith("_module.") for key in model)
    assert len(list((run_dir / "models").glob("round-*.pt"))) == 3
    for plot in ("accuracy.png", "loss.png", "epsilon.png"):
        assert (run_dir / plot).stat().st_size > 1000
    ledger = run_dir / "sites" / "site-000" / "store" / "privacy" / "ledger.jsonl"
    assert len(ledger.read_text().splitlines()) == 3


def test_same_seed_gives_same_result_and_no_dp_reports_no_epsilon(isolated_env, tmp_path):
    first = sim_run(isolated_env, tmp_path / "a", "--rounds", "2", "--seed", "3")
    again = sim_run(isolated_env, tmp_path / "b", "--rounds", "2", "--seed", "3")
    assert first["test_accuracy"] == again["test_accuracy"]
    assert first["test_loss"] == again["test_loss"]
    assert first["site_data"] == again["site_data"]

    plain = sim_run(isolated_env, tmp_path / "c", "--rounds", "2", "--epsilon", "none")
    assert plain["epsilon_spent"] == {"site-000": None, "site-001": None, "site-002": None}
    assert math.isfinite(plain["test_loss"])
