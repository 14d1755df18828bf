"""The run report's figures, each returned as an inline ``data:`` URI (SVG, base64).

Every function takes plain records (what the run directory holds) and draws one
matplotlib figure; nothing here reads files.
"""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import Callable
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from server.report.plots import draw_epsilon  # noqa: E402

_METRICS = ("accuracy", "loss")
_Drawn = TypeVar("_Drawn", bound=Callable[..., "str | None"])


def _drawn_once(draw: _Drawn) -> _Drawn:
    """Draw each figure once for the same records.

    A simulation renders its report twice (the ServerApp's, then the runner's with the
    whole run's wall time) from records that have not changed in between; drawing and
    encoding the figures is most of a render's cost. The records are the run
    directory's JSON, so their JSON text is the key.
    """

    @functools.lru_cache(maxsize=16)
    def from_records(records: str) -> str | None:
        return draw(*json.loads(records))

    @functools.wraps(draw)
    def drawn(*records: Any) -> str | None:
        return from_records(json.dumps(records))

    return drawn  # type: ignore[return-value]


def to_data_uri(figure: Figure) -> str:
    """The figure as a self-contained SVG data URI (no external fonts or files)."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@_drawn_once
def performance(rounds: list[dict[str, Any]]) -> str:
    """Accuracy and loss per round: central, federated (weighted) and each site's."""
    figure = Figure(figsize=(10, 4))
    x = [r["round"] for r in rounds]
    sites = sorted({s for r in rounds for s in r["per_site"]})
    for index, metric in enumerate(_METRICS):
        axes = figure.add_subplot(1, 2, index + 1)
        for site in sites:
            points = [(r["round"], r["per_site"].get(site, {}).get(metric)) for r in rounds]
            points = [(a, b) for a, b in points if b is not None]
            if points:
                axes.plot(*zip(*points), linewidth=0.8, alpha=0.6, label=site)
        for source, style in (("central", "k-o"), ("federated", "b--s")):
            y = [r[source].get(metric) for r in rounds]
            if any(v is not None for v in y):
                axes.plot(x, y, style, linewidth=2, label=f"{source} (global)")
        axes.set(xlabel="round", ylabel=metric, title=f"{metric} per round")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if index == 1 and axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="x-small", ncol=2)
    return to_data_uri(figure)


@_drawn_once
def participation(rounds: list[dict[str, Any]], sites: list[str]) -> str:
    """Sites x rounds: trained (green), excluded (red), not sampled (grey)."""
    state = np.zeros((len(sites), len(rounds)))
    for j, record in enumerate(rounds):
        for p in record["participants"]:
            state[sites.index(p["site"]), j] = 2
        for e in record["excluded"]:
            if e["site"] in sites:
                state[sites.index(e["site"]), j] = 1
    figure = Figure(figsize=(max(4, 0.4 * len(rounds) + 2), 0.35 * len(sites) + 1.5))
    axes = figure.add_subplot()
    cmap = matplotlib.colors.ListedColormap(["#cccccc", "#d62728", "#2ca02c"])
    axes.imshow(state, cmap=cmap, vmin=0, vmax=2, aspect="auto")
    axes.set_yticks(range(len(sites)), sites, fontsize="small")
    axes.set_xticks(range(len(rounds)), [str(r["round"]) for r in rounds], fontsize="small")
    axes.set(xlabel="round", title="green: trained, red: excluded, grey: absent")
    return to_data_uri(figure)


@_drawn_once
def epsilon(rounds: list[dict[str, Any]]) -> str:
    """Each site's epsilon after every round, with its budget as a dashed line."""
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    draw_epsilon(axes, rounds)
    axes.set(xlabel="round", ylabel="epsilon spent", title="privacy spent per site vs budget")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="x-small")
    return to_data_uri(figure)


@_drawn_once
def data_quality(quality: dict[str, dict[str, Any]]) -> str:
    """Rows per site (clean, read) and the largest missing share among its columns."""
    sites = sorted(quality)
    figure = Figure(figsize=(10, 3.5))
    rows = figure.add_subplot(1, 2, 1)
    x = np.arange(len(sites))
    for offset, key, label in ((-0.2, "rows_read", "read"), (0.2, "rows_clean", "clean")):
        values = [quality[s].get(key) or 0 for s in sites]
        rows.bar(x + offset, values, width=0.4, label=label)
    rows.set_xticks(x, sites, rotation=45, fontsize="small")
    rows.set(ylabel="rows", title="rows per site")
    rows.legend(fontsize="small")
    missing = figure.add_subplot(1, 2, 2)
    shares = [quality[s].get("missing_cells_fraction") for s in sites]
    missing.bar(x, [v or 0 for v in shares], color="#ff7f0e")
    for i, share in enumerate(shares):
        if share is None:
            missing.text(i, 0, "withheld", rotation=90, ha="center", va="bottom", fontsize="small")
    missing.set_xticks(x, sites, rotation=45, fontsize="small")
    missing.set(ylabel="share of feature cells", title="missing before cleaning")
    return to_data_uri(figure)


@_drawn_once
def drift_heatmap(rows: list[dict[str, Any]], which: str, threshold: float) -> str | None:
    """Sites x columns PSI (``which``: psi_federation or psi_previous); None if no value."""
    if all(r[which] is None for r in rows):
        return None
    values = [r for r in rows if r[which] is not None]
    sites = sorted({r["site"] for r in rows})
    columns = sorted({r["column"] for r in rows})
    grid = np.full((len(sites), len(columns)), np.nan)
    for r in values:
        grid[sites.index(r["site"]), columns.index(r["column"])] = r[which]
    figure = Figure(figsize=(min(14, 3 + 0.3 * len(columns)), 0.35 * len(sites) + 2.5))
    axes = figure.add_subplot()
    # grey: no PSI, the site's histogram was wholly suppressed
    cmap = matplotlib.colormaps["Reds"].with_extremes(bad="#d0d0d0")
    image = axes.imshow(grid, cmap=cmap, vmin=0, vmax=max(2 * threshold, np.nanmax(grid)))
    axes.set_yticks(range(len(sites)), sites, fontsize="small")
    axes.set_xticks(range(len(columns)), columns, rotation=90, fontsize="x-small")
    for i, j in zip(*np.nonzero(grid > threshold)):
        axes.text(j, i, "!", ha="center", va="center", color="white", fontsize="small")
    against = "federation" if which == "psi_federation" else "previous version"
    axes.set_title(f"PSI vs {against} (! above {threshold:g}; grey: withheld)", fontsize="medium")
    figure.colorbar(image, ax=axes, fraction=0.03, pad=0.02, shrink=0.8)
    return to_data_uri(figure)


@_drawn_once
def fairness(groups: dict[str, dict[str, Any]], attribute: str) -> str:
    """Per-group accuracy, selection rate, TPR and FPR of one sensitive column."""
    names = sorted(groups)
    metrics = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate")
    figure = Figure(figsize=(7, 3.5))
    axes = figure.add_subplot()
    x = np.arange(len(metrics))
    width = 0.8 / max(len(names), 1)
    for index, group in enumerate(names):
        values = [groups[group].get(m) or 0 for m in metrics]
        axes.bar(
            x + index * width - 0.4 + width / 2, values, width=width, label=f"{attribute}={group}"
        )
    axes.set_xticks(x, [m.replace("_", " ") for m in metrics], fontsize="small")
    axes.set(ylim=(0, 1), title=f"federated rates per group of '{attribute}'")
    axes.legend(fontsize="x-small")
    axes.grid(alpha=0.3, axis="y")
    return to_data_uri(figure)


@_drawn_once
def importance(federated: dict[str, float], top: int = 20) -> str:
    """Horizontal bars of the largest merged permutation importances."""
    items = sorted(federated.items(), key=lambda item: item[1], reverse=True)[:top]
    figure = Figure(figsize=(7, 0.28 * len(items) + 1.5))
    axes = figure.add_subplot()
    axes.barh([name for name, _ in items][::-1], [value for _, value in items][::-1])
    axes.set(xlabel="loss increase when shuffled", title="global feature importance (final model)")
    axes.tick_params(axis="y", labelsize="x-small")
    axes.grid(alpha=0.3, axis="x")
    return to_data_uri(figure)
