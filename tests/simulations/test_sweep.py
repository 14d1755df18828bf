"""``fedlife-sim sweep`` over seeds: the grid, the summary across seeds, the plot."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from simulations.spec import SimulationSpec
from simulations.sweep import Grid, across_seeds, plot_sweep, write_table
from simulations.sweep_cli import split_seeds


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0", (0,)), ("1,4,9", (1, 4, 9)), ("1-3,7", (1, 2, 3, 7)), (" 5 - 6 ", (5, 6))],
)
def test_seeds_are_listed_or_spanned(text, seeds):
    assert split_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "needle"),
    [("5-2", "'5-2'"), ("-1", "'-1'"), ("x", "'x'"), ("1-y", "'1-y'"), ("", "no value for seeds")],
)
def test_bad_seeds_are_one_line_and_write_nothing(
    cli, assert_one_line_error, tmp_path, text, needle
):
    out = tmp_path / "sweeps"
    result = cli("fedlife-sim", "sweep", "--seed", text, "--out", out)
    assert_one_line_error(result, needle)
    assert not out.exists()


def test_every_setting_runs_at_every_seed(tmp_path):
    grid = Grid(epsilons=(3.0, None), strategies=("fedavg",), alphas=(0.5,), seeds=(1, 2, 5))
    specs = grid.specs(SimulationSpec(), tmp_path)
    assert grid.size == len(specs) == 6
    assert sorted((s.epsilon or 0, s.seed) for s in specs) == [
        (0, 1), (0, 2), (0, 5), (3.0, 1), (3.0, 2), (3.0, 5)
    ]  # fmt: skip
    assert len({s.run_dir for s in specs}) == 6


def fake_runs(folder: Path, accuracies: dict[tuple, list[float]]) -> list[dict]:
    """Rows as ``run_sweep`` makes them, each with a run dir of two recorded rounds."""
    rows = []
    for (epsilon, alpha), per_seed in accuracies.items():
        for seed, accuracy in enumerate(per_seed):
            run_dir = folder / f"eps-{epsilon}_alpha-{alpha}_seed-{seed}"
            run_dir.mkdir(parents=True)
            rounds = [{"round": r, "central": {"accuracy": accuracy - 0.1 / r}} for r in (1, 2)]
            (run_dir / "metrics.jsonl").write_text("\n".join(map(json.dumps, rounds)) + "\n")
            rows.append(
                {"epsilon": epsilon, "strategy": "fedavg", "alpha": alpha, "seed": seed,
                 "test_accuracy": accuracy, "test_loss": 0.2, "max_epsilon_spent": 2.9,
                 "sites_trained": 5, "wall_s": 20.0, "run_dir": str(run_dir)}
            )  # fmt: skip
    return rows


def test_across_seeds_gives_each_setting_its_spread(tmp_path):
    accuracies = {(3.0, 0.5): [0.93, 0.95, 0.96], ("none", 0.5): [0.97, 0.95, 0.99]}
    summary = across_seeds(fake_runs(tmp_path, accuracies))
    assert [(s["epsilon"], s["alpha"]) for s in summary] == list(accuracies)
    for row, values in zip(summary, accuracies.values(), strict=True):
        assert row["runs"] == 3
        assert row["mean_accuracy"] == pytest.approx(statistics.mean(values))
        assert row["sd_accuracy"] == pytest.approx(statistics.stdev(values))
        assert (row["min_accuracy"], row["max_accuracy"]) == (min(values), max(values))


def test_tables_summarise_seeds_only_when_there_are_several(tmp_path):
    several = tmp_path / "several"
    write_table(fake_runs(several, {(3.0, 0.5): [0.9, 0.95]}), several)
    assert "Across seeds" in (several / "sweep.md").read_text()
    lines = (several / "seeds.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ["epsilon", "strategy", "alpha", "runs"]
    assert lines[1].startswith("3,fedavg,0.5,2,0.925,0.03536,0.9,0.95")

    one = tmp_path / "one"
    write_table(fake_runs(one, {(3.0, 0.5): [0.9], (3.0, 5.0): [0.95]}), one)
    assert across_seeds(fake_runs(tmp_path / "alone", {(3.0, 0.5): [0.9]})) == []
    assert "Across seeds" not in (one / "sweep.md").read_text()
    assert not (one / "seeds.csv").exists()


def test_plot_draws_a_setting_over_its_seeds(tmp_path):
    rows = fake_runs(tmp_path, {(3.0, 0.5): [0.9, 0.95], ("none", 0.5): [0.97, 0.99]})
    path = plot_sweep(rows, tmp_path / "sweep.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
