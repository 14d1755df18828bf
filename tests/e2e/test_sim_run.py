"""`fedlife-sim run` end to end: real Flower simulation engine on a private Ray."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from client.privacy.ledger import release_noise
from tests.e2e.conftest import isolated, run_cli, script

pytestmark = pytest.mark.e2e


def sim_run(env, run_dir: Path, *extra: str) -> dict:
    result = run_cli(
        [script("fedlife-sim"), "run", "--sites", "3", "--json", "--run-dir", str(run_dir), *extra],
        env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def secret_runs(tmp_path_factory) -> tuple[dict, dict, Path]:
    """Two runs with the same seed and the default (secret) noise: summaries and folder."""
    folder = tmp_path_factory.mktemp("secret")
    with isolated() as env:
        first, second = (sim_run(env, folder / n, "--rounds", "2", "--seed", "1") for n in "ab")
    return first, second, folder


def test_dp_run_writes_a_complete_run_dir_within_budget(secret_runs):
    summary, _, folder = secret_runs
    run_dir = folder / "a"

    assert summary["rounds"] == 2
    assert summary["run_dir"] == str(run_dir)
    assert 0.5 < summary["test_accuracy"] <= 1.0
    assert summary["wall_s"] > 0
    # report.html says the same wall time as summary.json (it once said the ServerApp's).
    page = (run_dir / "report.html").read_text()
    assert f"<td>{summary['wall_s']:.4g}</td>" in page
    assert sorted(summary["epsilon_spent"]) == ["site-000", "site-001", "site-002"]
    for spent in summary["epsilon_spent"].values():
        assert 0.5 * 3.0 < spent <= 3.0  # the plan spends the budget, never more

    rounds = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [1, 2]
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
    assert len(list((run_dir / "models").glob("round-*.pt"))) == 2
    for plot in ("accuracy.png", "loss.png", "epsilon.png"):
        assert (run_dir / plot).stat().st_size > 1000
    # The default centers features on DP means the sites released before round 1 and
    # paid for in the same ledger as their rounds of DP-SGD.
    ledger = run_dir / "sites" / "site-000" / "store" / "privacy" / "ledger.jsonl"
    entries = [json.loads(line)["fields"] for line in ledger.read_text().splitlines()]
    assert [e["mechanism"] for e in entries] == ["gaussian-moments"] + ["dp-sgd"] * 2
    assert entries[0]["noise_multiplier"] == release_noise(0.25 * 3.0, 1e-5)  # a quarter
    spec = json.loads(json.loads((run_dir / "run.json").read_text())["feature_spec"])
    assert len(spec["centers"]) == len(spec["features"]) and spec["spreads"][0] == 0.5
    assert len(set(spec["centers"])) > 1


def test_runs_differ_by_default_the_noise_is_secret_even_given_the_seed(secret_runs):
    """Without --reproducible, the sites' noise comes from secrets the seed does not fix."""
    *runs, folder = secret_runs
    first, second = (torch.load(folder / n / "model.pt") for n in "ab")

    assert all(run["noise_secret"] is True for run in runs)
    assert any(not torch.equal(first[k], second[k]) for k in first)


DIRT = "label_noise=0.1,hidden_labels=0.05,missing.mean_radius=0.2"


@pytest.mark.slow
def test_same_seed_gives_same_result_and_a_sweep_compares_dp_with_none(isolated_env, tmp_path):
    """A reproducible sweep (epsilon 3 and none) and a lone run with the same seed and dirt.

    The sweep's epsilon-3 cell and the lone run must agree on the split, the dirt
    injected, what the pipelines found and the final metrics: ``--reproducible`` reaches
    every run of the sweep.
    """
    first = sim_run(
        isolated_env,
        tmp_path / "a",
        "--rounds",
        "2",
        "--seed",
        "3",
        "--dirt",
        DIRT,
        "--reproducible",
    )
    sweep = run_cli(
        [script("fedlife-sim"), "sweep", "--epsilon", "3,none", "--sites", "3", "--rounds", "2"]
        + ["--seed", "3", "--dirt", DIRT, "--out", str(tmp_path / "sweeps"), "--json"]
        + ["--reproducible"],
        isolated_env,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    table = json.loads(sweep.stdout)
    dp, plain = (
        json.loads((Path(row["run_dir"]) / "summary.json").read_text()) for row in table["runs"]
    )
    assert first["noise_secret"] is False and dp["noise_secret"] is False
    assert first["test_accuracy"] == dp["test_accuracy"]
    assert first["test_loss"] == dp["test_loss"]
    assert first["site_data"] == dp["site_data"]
    sites = first["site_data"].values()
    assert sum(s["injected"]["label_noise"] + s["injected"]["hidden_labels"] for s in sites) > 0
    for site in sites:  # every hidden label is a row the site's pipeline set aside
        assert site["found"]["unlabeled_dropped"] == site["injected"]["hidden_labels"], site

    assert plain["epsilon_spent"] == {"site-000": None, "site-001": None, "site-002": None}
    assert math.isfinite(plain["test_loss"])
    folder = Path(table["folder"])
    assert [r["epsilon"] for r in table["runs"]] == [3.0, "none"]
    assert len((folder / "sweep.csv").read_text().splitlines()) == 3
    assert (folder / "sweep.md").read_text().count("| fedavg |") == 2
    assert (folder / "sweep.png").stat().st_size > 1000
