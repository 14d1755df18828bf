"""A grid of simulations (epsilon x strategy x alpha) and one table and plot of them.

Every cell of the grid is an ordinary ``fedlife-sim run`` with its own run directory
under the sweep's folder; ``sweep.csv`` / ``sweep.md`` hold one row per cell and
``sweep.png`` plots each cell's accuracy per round.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from common.errors import ConfigError  # noqa: E402
from server.run_dir import RunDirectory  # noqa: E402
from simulations.runner import SimulationSpec, plan, run  # noqa: E402

TABLE_COLUMNS = (
    "epsilon", "strategy", "alpha", "test_accuracy", "test_loss", "max_epsilon_spent",
    "sites_trained", "wall_s", "run_dir",
)  # fmt: skip


@dataclass(frozen=True)
class Grid:
    """The values each swept option takes; every combination is one run.

    Parameters
    ----------
    epsilons : privacy budgets per site (None = no DP).
    strategies : Flower strategy names.
    alphas : Dirichlet / quantity-skew concentrations.
    """

    epsilons: tuple[float | None, ...]
    strategies: tuple[str, ...]
    alphas: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("epsilons", "strategies", "alphas"):
            if not getattr(self, name):
                raise ConfigError(f"sweep: no value for {name}")

    def specs(self, base: SimulationSpec, folder: Path) -> list[SimulationSpec]:
        """One spec per combination, each with its run directory under ``folder``."""
        specs = []
        for epsilon, strategy, alpha in itertools.product(
            self.epsilons, self.strategies, self.alphas
        ):
            name = f"eps-{epsilon or 'none'}_{strategy}_alpha-{alpha:g}"
            spec = replace(
                base, epsilon=epsilon, strategy=strategy, alpha=alpha, run_dir=str(folder / name)
            )
            specs.append(spec)
        return specs


def run_sweep(
    grid: Grid,
    base: SimulationSpec,
    folder: Path,
    on_run: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every cell (all validated first), then write the table and the plot.

    Parameters
    ----------
    grid : the swept values.
    base : every other setting of the runs.
    folder : the sweep's folder (created).
    on_run : called with (index, total, summary) after each run.
    """
    specs = grid.specs(base, folder)
    planned = [plan(spec) for spec in specs]  # a bad cell fails before any run
    rows = []
    for index, (spec, one) in enumerate(zip(specs, planned, strict=True), start=1):
        summary = run(one)
        rows.append(table_row(spec, summary))
        if on_run is not None:
            on_run(index, len(specs), summary)
    write_table(rows, folder)
    plot_sweep(rows, folder / "sweep.png")
    return rows


def table_row(spec: SimulationSpec, summary: dict[str, Any]) -> dict[str, Any]:
    spent = [e for e in summary["epsilon_spent"].values() if e is not None]
    return {
        "epsilon": "none" if spec.epsilon is None else spec.epsilon,
        "strategy": spec.strategy,
        "alpha": spec.alpha,
        "test_accuracy": summary["test_accuracy"],
        "test_loss": summary["test_loss"],
        "max_epsilon_spent": max(spent) if spent else None,
        "sites_trained": len(summary["epsilon_spent"]),
        "wall_s": summary["wall_s"],
        "run_dir": summary["run_dir"],
    }


def write_table(rows: list[dict[str, Any]], folder: Path) -> None:
    """``sweep.csv`` and ``sweep.md``: one row per run."""
    frame = pl.DataFrame([{c: cell_text(r[c]) for c in TABLE_COLUMNS} for r in rows])
    frame.write_csv(folder / "sweep.csv")
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in frame.iter_rows()]
    (folder / "sweep.md").write_text("\n".join(lines) + "\n")


def plot_sweep(rows: list[dict[str, Any]], path: Path) -> Path:
    """Accuracy per round of every run (central test split, else the sites' own)."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for row in rows:
        records = [r for r in RunDirectory(row["run_dir"]).rounds() if "stopped" not in r]
        rounds = [r["round"] for r in records]
        accuracy = [(r["central"] or r["federated"]).get("accuracy") for r in records]
        label = f"eps {row['epsilon']}, {row['strategy']}, alpha {row['alpha']:g}"
        axes.plot(rounds, accuracy, marker="o", label=label)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("round")
    axes.set_ylabel("test accuracy")
    axes.set_title("fedlife sweep")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def cell_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
