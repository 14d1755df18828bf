"""The run report: per site, the dirt injected, what its pipeline found, its fate.

One set of rows feeds the terminal table and ``report.md`` in the run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from server.report.summary import summary_line

COLUMNS = ("site", "node", "rows", "injected", "pipeline found", "federation", "epsilon")
SHOWN_SITES = 25  # a 1000-site run's table shows the first ones; report.md has all
_INJECTED = {
    "duplicates": "dup",
    "missing": "gaps",
    "missing_by_column": "col gaps",
    "outliers": "outliers",
    "label_noise": "noisy labels",
    "hidden_labels": "hidden labels",
}
_FOUND = {
    "duplicates_dropped": "dup",
    "values_imputed": "imputed",
    "values_clipped": "clipped",
    "unlabeled_dropped": "unlabeled",
    "rows_rejected": "rejected",
}


def site_rows(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row of text cells (``COLUMNS``) per site."""
    fates = _fates(summary)
    rows: list[tuple[str, ...]] = []
    for site, info in summary["site_data"].items():
        injected = info.get("injected", {})
        found = info.get("found", {})
        spent = summary["epsilon_spent"].get(site)
        budget = summary["epsilon_budget"].get(site)
        epsilon = "no DP" if spent is None and site in summary["epsilon_spent"] else "-"
        if spent is not None:
            epsilon = f"{spent:.3f} / {budget:g}" if budget else f"{spent:.3f}"
        rows.append(
            (
                site + (f" ({info['group']})" if "group" in info else ""),
                summary.get("site_nodes", {}).get(site, "")[:8],
                str(info["rows"]),
                _counts(injected, _INJECTED, extra=injected.get("schema_drift")),
                found["error"] if "error" in found else _counts(found, _FOUND, found.get("gate")),
                fates.get(site, "trained"),
                epsilon,
            )
        )
    return rows


# Below this many columns the seven-column table wraps each site over several lines.
WIDE_TABLE_COLUMNS = 100


def print_report(summary: dict[str, Any], console: Console) -> None:
    """The run's per-site table (a block per site on a narrow terminal) and its summary line."""
    rows = site_rows(summary)
    title = f"fedlife run: {summary['run_dir']}"
    if console.width >= WIDE_TABLE_COLUMNS:
        table = Table(title=title)
        for column in COLUMNS:
            table.add_column(column, justify="right" if column in ("rows", "epsilon") else "left")
        for row in rows[:SHOWN_SITES]:
            table.add_row(*row)
        console.print(table)
    else:
        console.print(title, highlight=False, markup=False, overflow="fold")
        for site, node, count, injected, found, fate, epsilon in rows[:SHOWN_SITES]:
            console.print(
                f"{site}  node {node or '-'}  rows {count}  epsilon {epsilon}  {fate}\n"
                f"  injected: {injected}\n  pipeline found: {found}",
                highlight=False,
                markup=False,
                overflow="fold",
            )
    if len(rows) > SHOWN_SITES:
        console.print(f"... and {len(rows) - SHOWN_SITES} more sites in report.md")
    console.print(summary_line(summary), highlight=False, markup=False, overflow="fold")
    if summary["stopped_reason"]:
        console.print(f"[yellow]stopped early:[/yellow] {summary['stopped_reason']}")


def write_report(summary: dict[str, Any], path: Path) -> Path:
    """``report.md``: the run's headline figures and the per-site table."""
    lines = [
        f"# fedlife simulation {summary['run_dir']}",
        "",
        f"- dataset `{summary['dataset']}`, model `{summary['model']}`, "
        f"{summary['sites']} sites, partition `{summary['partition']}`",
        f"- test accuracy {summary['test_accuracy']}, {summary['rounds']} rounds, "
        f"{summary['wall_s']} s",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(row) + " |" for row in site_rows(summary)),
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def _counts(values: dict[str, Any], names: dict[str, str], extra: str | None = None) -> str:
    parts = [f"{label} {values[key]}" for key, label in names.items() if values.get(key)]
    if extra and extra != "pass":
        parts.append(extra if "->" not in extra else f"drift {extra}")
    return ", ".join(parts) or "-"


def _fates(summary: dict[str, Any]) -> dict[str, str]:
    """Why a site did not train, from the profile round and the rounds' exclusions."""
    fates: dict[str, str] = {}
    for excluded in [*summary.get("profile_excluded", []), *summary.get("excluded", [])]:
        fates.setdefault(excluded["site"], "excluded: " + excluded["reason"])
    return fates
