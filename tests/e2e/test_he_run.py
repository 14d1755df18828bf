"""`fedlife-sim run --he`: encrypted aggregation end to end on Flower's simulation engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import run_cli, script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
tenseal = pytest.importorskip("tenseal")

ARGS = ["--sites", "3", "--rounds", "2", "--seed", "3", "--reproducible", "--json"]


def sim_run(env, run_dir: Path, *extra: str) -> dict:
    result = run_cli([script("fedlife-sim"), "run", *ARGS, "--run-dir", str(run_dir), *extra], env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_he_run_matches_plaintext_and_the_coordinator_holds_no_secret(isolated_env, tmp_path):
    encrypted = sim_run(isolated_env, tmp_path / "he", "--he")
    plain = sim_run(isolated_env, tmp_path / "plain")

    assert encrypted["rounds"] == plain["rounds"] == 2
    assert encrypted["evaluated_on"].startswith("federated evaluation only")
    # The same seed and DP noise: decrypting the CKKS sum changes no prediction that matters.
    assert abs(encrypted["federated_accuracy"] - plain["federated_accuracy"]) <= 0.01
    run_dir = tmp_path / "he"
    assert json.loads((run_dir / "run.json").read_text())["evaluation"].startswith("federated")
    rounds = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(r["central"] == {} and r["federated"]["accuracy"] > 0 for r in rounds)
    assert all(len(r["participants"]) == 3 for r in rounds)
    assert not (run_dir / "model.pt").exists() and (run_dir / "model.he").is_file()
    assert sorted(p.name for p in (run_dir / "models").glob("round-*")) == [
        "round-001.he",
        "round-002.he",
    ]

    # Every file of the coordinator's run directory (the virtual sites' folders aside)
    # that TenSEAL loads as a context holds no secret key.
    contexts = 0
    for path in run_dir.rglob("*"):
        if not path.is_file() or (run_dir / "sites") in path.parents:
            continue
        try:
            context = tenseal.context_from(path.read_bytes())
        except Exception:  # noqa: BLE001, S112 - not a context: nothing to check
            continue
        contexts += 1
        assert not context.has_secret_key(), path
    assert contexts >= 1  # he-public.context, at least
    secret = tenseal.context_from(
        (run_dir / "sites" / "site-000" / "he-secret.context").read_bytes()
    )
    assert secret.has_secret_key()
