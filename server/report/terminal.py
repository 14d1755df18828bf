"""The run's closing table: per site, its fate and epsilon (and in a simulation, the dirt
injected and what its pipeline found).

One set of rows feeds the terminal table of ``fedlife-sim run`` and ``fedlife-coord run``
and a simulation's ``report.md``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from server.report.summary import summary_line

COLUMNS = ("site", "node", "rows", "injected", "pipeline found", "federation", "epsilon")
# A deployed run knows no injected dirt or site pipelines: its table has what it knows.
DEPLOYED_COLUMNS = ("site", "federation", "epsilon")
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
    for site, info in _site_data(summary).items():
        injected = info.get("injected", {})
        found = info.get("found", {})
        spent = summary["epsilon_spent"].get(site)
        budget = summary.get("epsilon_budget", {}).get(site)
        epsilon = "no DP" if spent is None and site in summary["epsilon_spent"] else "-"
        if spent is not None:
            epsilon = f"{spent:.3f} / {budget:g}" if budget else f"{spent:.3f}"
        rows.append(
            (
                site + (f" ({info['group']})" if "group" in info else ""),
                summary.get("site_nodes", {}).get(site, "")[:8],
                str(info.get("rows", "-")),
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
    """The run's per-site table (a block per site on a narrow terminal) and its summary line.

    Parameters
    ----------
    summary : the run's summary (``summary.json``; a simulation's adds ``site_data``).
    console : where to print; its width picks the table or the blocks.
    """
    columns = COLUMNS if "site_data" in summary else DEPLOYED_COLUMNS
    shown = [COLUMNS.index(column) for column in columns]
    rows = [tuple(row[i] for i in shown) for row in site_rows(summary)]
    title = f"fedlife run: {summary['run_dir']}"
    if console.width >= WIDE_TABLE_COLUMNS:
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right" if column in ("rows", "epsilon") else "left")
        for row in rows[:SHOWN_SITES]:
            table.add_row(*row)
        console.print(table)
    else:
        console.print(title, highlight=False, markup=False, overflow="fold")
        for row in rows[:SHOWN_SITES]:
            console.print(_block(dict(zip(columns, row, strict=True))), **_PLAIN)
    if len(rows) > SHOWN_SITES:
        more = "report.md" if "site_data" in summary else "summary.json"
        console.print(f"... and {len(rows) - SHOWN_SITES} more sites in {more}")
    console.print(summary_line(summary), **_PLAIN)
    if summary["stopped_reason"]:
        console.print(f"[yellow]stopped early:[/yellow] {summary['stopped_reason']}")


_PLAIN: dict[str, Any] = {"highlight": False, "markup": False, "overflow": "fold"}


def _block(cells: dict[str, str]) -> str:
    """One site on a narrow terminal: its headline, then the long cells on their own lines."""
    head = f"{cells['site']}  "
    if "node" in cells:
        head += f"node {cells['node'] or '-'}  rows {cells['rows']}  "
    head += f"epsilon {cells['epsilon']}  {cells['federation']}"
    if "injected" not in cells:
        return head
    return f"{head}\n  injected: {cells['injected']}\n  pipeline found: {cells['pipeline found']}"


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


def _site_data(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A simulation's per-site data; a deployment's sites, from its epsilons and exclusions."""
    if "site_data" in summary:
        return summary["site_data"]
    excluded = [*summary.get("profile_excluded", []), *summary.get("excluded", [])]
    names = {*summary["epsilon_spent"], *(e["site"] for e in excluded)}
    return {name: {} for name in sorted(names)}
