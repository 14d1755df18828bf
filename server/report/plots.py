"""PNG plots of a run: accuracy and loss per round, epsilon per site."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from server.run_dir import RunDirectory  # noqa: E402


def plot_run(run_dir: RunDirectory) -> list[Path]:
    """Write accuracy.png, loss.png and epsilon.png from metrics.jsonl."""
    rounds = [r for r in run_dir.rounds() if "stopped" not in r]
    if not rounds:
        return []
    written = [_metric_plot(run_dir, rounds, m) for m in ("accuracy", "loss")]
    written.append(_epsilon_plot(run_dir, rounds))
    return written


def _metric_plot(run_dir: RunDirectory, rounds: list[dict], metric: str) -> Path:
    figure, axes = plt.subplots(figsize=(6, 4))
    x = [r["round"] for r in rounds]
    for source, label in (("central", "central test split"), ("federated", "sites (weighted)")):
        y = [r[source].get(metric) for r in rounds]
        if any(v is not None for v in y):
            axes.plot(x, y, marker="o", label=label)
    axes.set(xlabel="round", ylabel=metric, title=f"{metric} per round")
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    axes.grid(alpha=0.3)
    return _save(figure, run_dir.path / f"{metric}.png")


def _epsilon_plot(run_dir: RunDirectory, rounds: list[dict]) -> Path:
    figure, axes = plt.subplots(figsize=(6, 4))
    draw_epsilon(axes, rounds)
    axes.set(xlabel="round", ylabel="epsilon spent", title="privacy spent per site")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, run_dir.path / "epsilon.png")


def draw_epsilon(axes, rounds: list[dict]) -> None:
    """Each site's epsilon after every round, and each budget as a dashed red line."""
    sites = sorted({p["site"] for r in rounds for p in r["participants"]})
    for site in sites:
        points = [
            (r["round"], p["epsilon"])
            for r in rounds
            for p in r["participants"]
            if p["site"] == site and p["epsilon"] is not None
        ]
        if points:
            axes.plot(*zip(*points), marker=".", label=site)
    budgets = {p["epsilon_budget"] for r in rounds for p in r["participants"]} - {-1.0}
    for budget in sorted(budgets):
        axes.axhline(budget, color="red", linestyle="--", linewidth=1, label=f"budget {budget:g}")


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
