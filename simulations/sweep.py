"""A grid of simulations (epsilon x strategy x alpha x seed) and one table and plot of them.

Every cell of the grid is an ordinary ``fedlife-sim run`` with its own run directory
under the sweep's folder; ``sweep.csv`` / ``sweep.md`` hold one row per cell and
``sweep.png`` plots each cell's accuracy per round. With several seeds,
``seeds.csv`` and a second table in ``sweep.md`` give each setting's accuracy across
them: one seed's test split is a small sample, and a difference between settings
means little until it is larger than their spread over seeds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from common.errors import ConfigError
from server.run_dir import RunDirectory
from simulations.spec import SimulationSpec

SETTING_COLUMNS = ("epsilon", "strategy", "alpha")
TABLE_COLUMNS = (
    *SETTING_COLUMNS, "seed", "test_accuracy", "test_loss", "max_epsilon_spent",
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
    seeds : seeds of the split, the dirt, the model and training.
    """

    epsilons: tuple[float | None, ...]
    strategies: tuple[str, ...]
    alphas: tuple[float, ...]
    seeds: tuple[int, ...] = (SimulationSpec.default("seed"),)

    def __post_init__(self) -> None:
        for name in ("epsilons", "strategies", "alphas", "seeds"):
            if not getattr(self, name):
                raise ConfigError(f"sweep: no value for {name}")

    def specs(self, base: SimulationSpec, folder: Path) -> list[SimulationSpec]:
        """One spec per combination, each with its run directory under ``folder``."""
        specs = []
        for epsilon, strategy, alpha, seed in itertools.product(
            self.epsilons, self.strategies, self.alphas, self.seeds
        ):
            name = f"eps-{epsilon or 'none'}_{strategy}_alpha-{alpha:g}_seed-{seed}"
            cell = dict(epsilon=epsilon, strategy=strategy, alpha=alpha, seed=seed)
            specs.append(replace(base, **cell, run_dir=str(folder / name)))
        return specs

    @property
    def size(self) -> int:
        return len(self.epsilons) * len(self.strategies) * len(self.alphas) * len(self.seeds)


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
    from simulations.runner import plan, run  # Ray and Flower: only to run

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
        "seed": spec.seed,
        "test_accuracy": summary["test_accuracy"],
        "test_loss": summary["test_loss"],
        "max_epsilon_spent": max(spent) if spent else None,
        "sites_trained": len(summary["epsilon_spent"]),
        "wall_s": summary["wall_s"],
        "run_dir": summary["run_dir"],
    }


def across_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Test accuracy of each setting over its seeds: runs, mean, sd, min, max.

    Empty when the sweep ran one seed: there is nothing to summarise across.
    """
    if len({r["seed"] for r in rows}) < 2:
        return []
    indices, distinct = setting_indices(rows)
    accuracy = pl.col("test_accuracy")
    frame = pl.DataFrame(
        {"setting": indices, "test_accuracy": [r["test_accuracy"] for r in rows]},
        schema={"setting": pl.Int64, "test_accuracy": pl.Float64},
    )
    summary = frame.group_by("setting", maintain_order=True).agg(
        pl.len().alias("runs"),
        accuracy.mean().alias("mean_accuracy"),
        accuracy.std().alias("sd_accuracy"),
        accuracy.min().alias("min_accuracy"),
        accuracy.max().alias("max_accuracy"),
    )
    return [
        dict(zip(SETTING_COLUMNS, distinct[s.pop("setting")], strict=True)) | s
        for s in summary.to_dicts()
    ]


def setting_indices(rows: list[dict[str, Any]]) -> tuple[list[int], list[tuple]]:
    """Each row's setting (epsilon, strategy, alpha) as an index into the distinct ones."""
    settings = [tuple(r[c] for c in SETTING_COLUMNS) for r in rows]
    distinct = list(dict.fromkeys(settings))
    return [distinct.index(s) for s in settings], distinct


def write_table(rows: list[dict[str, Any]], folder: Path) -> None:
    """``sweep.csv`` and ``sweep.md``: one row per run; with several seeds, ``seeds.csv``."""
    write_csv(rows, TABLE_COLUMNS, folder / "sweep.csv")
    markdown = markdown_table(rows, TABLE_COLUMNS)
    summary = across_seeds(rows)
    if summary:
        columns = tuple(summary[0])
        write_csv(summary, columns, folder / "seeds.csv")
        markdown += "\nAcross seeds:\n\n" + markdown_table(summary, columns)
    (folder / "sweep.md").write_text(markdown)


def write_csv(rows: list[dict[str, Any]], columns: tuple[str, ...], path: Path) -> None:
    pl.DataFrame([{c: cell_text(r[c]) for c in columns} for r in rows]).write_csv(path)


def markdown_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell_text(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot_sweep(rows: list[dict[str, Any]], path: Path) -> Path:
    """Accuracy per round of each setting (central test split, else the sites' own).

    A setting run over several seeds is drawn as its mean, in a band from its lowest
    to its highest seed.
    """
    indices, distinct = setting_indices(rows)
    points = [
        {"setting": index, "round": record["round"], "accuracy": accuracy}
        for row, index in zip(rows, indices, strict=True)
        for record in RunDirectory(row["run_dir"]).rounds()
        if "stopped" not in record
        and (accuracy := (record["central"] or record["federated"]).get("accuracy")) is not None
    ]
    schema = {"setting": pl.Int64, "round": pl.Int64, "accuracy": pl.Float64}
    curves = (
        pl.DataFrame(points, schema=schema)
        .group_by("setting", "round")
        .agg(
            pl.col("accuracy").mean().alias("mean"),
            pl.col("accuracy").min().alias("low"),
            pl.col("accuracy").max().alias("high"),
            pl.len().alias("seeds"),
        )
        .sort("setting", "round")
    )
    # Imported here: matplotlib takes a second, and the sweep CLI imports this module.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    for (index,), curve in curves.group_by("setting", maintain_order=True):
        epsilon, strategy, alpha = distinct[index]
        label = f"eps {epsilon}, {strategy}, alpha {alpha:g}"
        seeds = curve["seeds"].max()
        if seeds > 1:
            label += f" (mean of {seeds} seeds, band: min-max)"
        (line,) = axes.plot(curve["round"], curve["mean"], marker="o", label=label)
        if seeds > 1:
            axes.fill_between(
                curve["round"], curve["low"], curve["high"], color=line.get_color(), alpha=0.2
            )
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("round")
    axes.set_ylabel("test accuracy")
    axes.set_title("fedlife sweep")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def cell_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
