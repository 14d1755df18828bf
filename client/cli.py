"""``fedlife-site``: what a partner site's operator runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from client.prepare import prepare
from client.site import Site
from common.cli import one_line_errors
from common.config import load_site_config

app = typer.Typer(
    help="Partner site: prepare your data, check it, see your privacy budget.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
CONFIG = typer.Option(..., "--config", "-c", help="The site's site.toml.")


@app.command("prepare")
@one_line_errors
def prepare_command(config: Path = CONFIG) -> None:
    """Ingest, clean and version the site's raw files; raw files are never modified."""
    result = prepare(load_site_config(config))
    report = result.report
    table = Table(title=f"prepare: clean version {result.clean.version}")
    table.add_column("step")
    table.add_column("count", justify="right")
    rows = [
        ("rows read", report.rows_read),
        ("duplicates dropped", report.duplicates_dropped),
        ("unlabeled rows dropped", report.unlabeled_dropped),
        ("incomplete rows dropped", report.incomplete_dropped),
        ("values imputed", sum(report.imputed.values())),
        ("values clipped to range", sum(report.clipped.values())),
        ("clean rows", report.rows_clean),
    ]
    for step, count in rows:
        table.add_row(step, str(count))
    console.print(table)
    if result.unchanged:
        console.print("input and config unchanged: no new version")
    gate = "pass" if result.gate_passed else "FAIL: " + "; ".join(result.gate_reasons)
    console.print(f"quality gate: {gate}")


@app.command("status")
@one_line_errors
def status_command(config: Path = CONFIG, as_json: bool = typer.Option(False, "--json")) -> None:
    """Tables, their latest versions and row counts, and the gate status."""
    site = Site(load_site_config(config))
    tables = {}
    for name in ("raw", "clean"):
        latest = site.store.latest(name)
        if latest is not None:
            tables[name] = {"version": latest.version, "rows": int(latest.lineage.get("rows", 0))}
    status = {"site": site.name, "tables": tables}
    if "clean" in tables:
        status["gate"] = site.gate_reasons() or "pass"
    if as_json:
        print(json.dumps(status))
        return
    table = Table(title=f"site {site.name}")
    for column in ("table", "version", "rows"):
        table.add_column(column)
    for name, info in tables.items():
        table.add_row(name, str(info["version"]), str(info["rows"]))
    console.print(table)
    console.print(f"quality gate: {status.get('gate', 'no clean data yet')}")


@app.command("budget")
@one_line_errors
def budget_command(config: Path = CONFIG, as_json: bool = typer.Option(False, "--json")) -> None:
    """Privacy spent, remaining and the history of DP steps."""
    site = Site(load_site_config(config))
    privacy = site.config.privacy
    entries = site.ledger.entries()
    spent = site.ledger.epsilon(privacy.delta)
    budget = {
        "site": site.name,
        "epsilon_budget": privacy.epsilon_budget,
        "delta": privacy.delta,
        "accountant": privacy.accountant,
        "epsilon_spent": spent if math.isfinite(spent) else None,
        "epsilon_remaining": max(0.0, privacy.epsilon_budget - spent)
        if math.isfinite(spent)
        else 0.0,
        "history": [e.__dict__ for e in entries],
    }
    if as_json:
        print(json.dumps(budget))
        return
    table = Table(title=f"privacy ledger of {site.name}")
    for column in ("time", "run", "round", "table version", "sigma", "rate", "steps"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e.time,
            e.run_id,
            str(e.round),
            str(e.table_version),
            f"{e.noise_multiplier:.3f}",
            f"{e.sample_rate:.3f}",
            str(e.steps),
        )
    console.print(table)
    shown = "unbounded (trained without DP)" if not math.isfinite(spent) else f"{spent:.3f}"
    console.print(f"epsilon spent {shown} of {privacy.epsilon_budget} (delta {privacy.delta:g})")


def main() -> None:
    app()
