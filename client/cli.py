"""``fedlife-site``: what a partner site's operator runs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from client.classification import register as register_classify
from client.federation.final_model import model_app
from client.federation.join import join_command
from client.labeling.cli import app as label_app
from client.open_cli import register as register_open
from client.pipeline.prepare import prepare
from client.pipeline.unfinished import unfinished_prepare
from client.privacy.subjects import unit_of_privacy
from client.retention.backup_cli import register as register_backup
from client.retention.cli import register as register_retention
from client.retention.pseudonymize import ensure_pseudonymized
from client.site import Site
from client.site_audit import site_audit
from client.site_schedule import register as register_schedule
from client.store import TABLES, SiteStore
from client.store_repair import backup_folder, damaged_tables, repair_table
from client.verify_cli import register as register_verify
from common.cli import VERSION_OPTION, err_console, one_line_errors
from common.config import SiteConfig, load_site_config
from common.errors import StoppedByUser, StoreError
from common.terminal import print_fitted

app = typer.Typer(
    help="Partner site: prepare your data, check it, see your privacy budget.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(label_app, name="label")
app.add_typer(model_app, name="model")
console = Console()
CONFIG = typer.Option(..., "--config", "-c", help="The site's site.toml.")


@app.callback()
def _group(show_version: bool = VERSION_OPTION) -> None:  # noqa: FBT001 (a typer flag)
    """Partner site: prepare your data, check it, see your privacy budget."""


def _versions(config: SiteConfig) -> dict[str, int]:
    """The latest committed version of each table the store holds."""
    store = SiteStore(config.store_dir)
    found = {name: store.latest(name) for name in TABLES}
    return {name: v.version for name, v in found.items() if v is not None}


def _interrupted_prepare(config: SiteConfig, before: dict[str, int]) -> str:
    """What an interrupted prepare left: which tables got a new version, if any."""
    after = _versions(config)
    new = [f"{name} version {v}" for name, v in after.items() if before.get(name) != v]
    clean = f"clean is version {after['clean']}" if "clean" in after else "no clean version yet"
    if not new:
        return f"interrupted: nothing was committed; {clean}"
    return (
        f"interrupted after committing {', '.join(new)}; {clean} (the next prepare makes a "
        "complete version)"
    )


@app.command("prepare")
@one_line_errors
def prepare_command(config: Path = CONFIG) -> None:
    """Ingest, validate, clean and version the site's raw files (never modified).

    Rows that break the schema go to the quarantine table with their reason.
    """
    site_config = load_site_config(config)
    with Progress(
        TextColumn("[bold]prepare"),
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as progress:
        task = progress.add_task("starting")
        before = _versions(site_config)
        if (migrated := ensure_pseudonymized(site_config, create=True)) is not None:
            console.print(migrated.describe(), highlight=False, soft_wrap=True)
        try:
            result = prepare(site_config, lambda step: progress.update(task, description=step))
        except KeyboardInterrupt:
            raise StoppedByUser(_interrupted_prepare(site_config, before)) from None
    report = result.report
    if result.notice:
        console.print(result.notice, highlight=False)
    if result.incremental:
        console.print("incremental: only the new input was read and added", highlight=False)
    table = Table(title=f"prepare: clean version {result.clean.version}")
    table.add_column("step")
    table.add_column("count", justify="right")
    rows = [
        ("rows read", report.rows_read),
        *((f"rejected: {reason}", n) for reason, n in sorted(report.rejected.items())),
        ("duplicates dropped", report.duplicates_dropped),
        ("unlabeled rows set aside for labeling", report.unlabeled_dropped),
        ("incomplete rows dropped", report.incomplete_dropped),
        *((f"imputed: {column}", n) for column, n in sorted(report.imputed.items())),
        *((f"outliers tamed: {column}", n) for column, n in sorted(report.clipped.items())),
        ("clean rows", report.rows_clean),
    ]
    for step, count in rows:
        table.add_row(step, str(count))
    if result.unchanged:
        console.print(f"input and config unchanged: clean version {result.clean.version} stays")
    else:
        console.print(table)
    gate = "pass" if result.gate_passed else "FAIL: " + "; ".join(result.gate_reasons)
    console.print(f"quality gate: {gate}")
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)


@app.command("status")
@one_line_errors
def status_command(config: Path = CONFIG, *, as_json: bool = typer.Option(False, "--json")) -> None:
    """Tables, their latest versions and row counts, and the gate status.

    A table whose newest commit cannot be read is shown at its last readable version
    (then exit 2: ``fedlife-site repair`` rolls it back); a prepare that stopped
    between its commits is named.
    """
    site = Site(load_site_config(config))
    damaged = {d.table: d for d in damaged_tables(site.store, TABLES)}
    tables: dict[str, dict[str, object]] = {}
    for name in TABLES:
        if name in damaged:
            damage = damaged[name]
            tables[name] = {
                "version": damage.last_readable,
                "rows": damage.readable_rows,
                "damaged": damage.describe(),
            }
            continue
        latest = site.store.latest(name)
        if latest is not None:
            tables[name] = {"version": latest.version, "rows": int(latest.lineage.get("rows", 0))}
    status: dict[str, object] = {"site": site.name, "tables": tables}
    stopped = None if damaged else unfinished_prepare(site.store)
    if stopped is not None:
        status["unfinished_prepare"] = {"run": stopped.run, "detail": stopped.describe()}
    if "clean" in tables and "clean" not in damaged:
        status["gate"] = site.gate_reasons() or "pass"
    if as_json:
        print(json.dumps(status))
    else:
        table = Table(title=f"site {site.name}")
        for column in ("table", "version", "rows"):
            table.add_column(column)
        for name, info in tables.items():
            version = f"{info['version']} (damaged)" if "damaged" in info else str(info["version"])
            table.add_row(name, version, "?" if info["rows"] is None else str(info["rows"]))
        console.print(table)
        console.print(f"quality gate: {status.get('gate', 'no clean data yet')}")
        if stopped is not None:
            err_console.print(
                f"warning: {stopped.describe()}; the next fedlife-site prepare supersedes it",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    if damaged:
        fix = f"fedlife-site repair -c {config} rolls back to the last readable version"
        raise StoreError("; ".join(d.describe() for d in damaged.values()) + f": {fix}")


@app.command("repair")
@one_line_errors
def repair_command(config: Path = CONFIG) -> None:
    """Roll each table whose newest commits cannot be read back to its last readable version.

    The unreadable commit files move to ``<store>/repair-backup/<time>/``; no data file
    is deleted. Each rollback is recorded in the audit log.
    """
    site_config = load_site_config(config)
    store = SiteStore(site_config.store_dir)
    damaged = damaged_tables(store, TABLES)
    if not damaged:
        console.print("every table reads: nothing to repair")
        return
    backup = backup_folder(store.root)
    for damage in damaged:
        outcome = repair_table(damage, backup)
        site_audit(site_config).append(
            "repair",
            table=outcome.table,
            rolled_back_to=outcome.rolled_back_to,
            removed_versions=outcome.removed_versions,
            backup=outcome.backup,
        )
        removed = ", ".join(map(str, outcome.removed_versions))
        console.print(
            f"{outcome.table}: rolled back to version {outcome.rolled_back_to}; unreadable "
            f"version(s) {removed} moved to {outcome.backup}",
            highlight=False,
            soft_wrap=True,
        )


@app.command("budget")
@one_line_errors
def budget_command(config: Path = CONFIG, *, as_json: bool = typer.Option(False, "--json")) -> None:
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
        "unit_of_privacy": unit_of_privacy(site.config),
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
    console.print(f"unit of privacy: {unit_of_privacy(site.config)}")


@app.command("profile")
@one_line_errors
def profile_command(
    config: Path = CONFIG, *, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Data-quality profile of the latest clean version; histograms in <store>/reports."""
    from client.pipeline.profile import profile  # imports matplotlib: only for this command

    site = Site(load_site_config(config))
    found = profile(site)
    if as_json:
        print(json.dumps(found))
        return

    def shown(value: object) -> str:
        return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    table = Table(title=f"{site.name}: clean version {found['version']}, {found['rows']} rows")
    for column in ("column", "type", "missing %", "distinct", "min", "mean", "max"):
        table.add_column(column, justify="left" if column in ("column", "type") else "right")
    for name, info in found["columns"].items():
        values = [info.get(stat) for stat in ("min", "mean", "max")]
        if info["role"] in (None, "pii", "id"):
            values = ["hidden", "", ""]
        table.add_row(
            name,
            info["type"],
            f"{100 * info['missing_fraction']:.1f}",
            str(info["distinct"]),
            *map(shown, values),
        )
    console.print(table)
    where = site.config.store_dir / "reports"
    console.print(
        f"{len(found['histograms'])} histogram(s) in {where}, sealed: fedlife-site open "
        f"FILE -c {config} --out FILE.png shows one",
        soft_wrap=True,
    )


@app.command("init")
@one_line_errors
def init_command(
    directory: Path = typer.Argument(..., help="The site's folder; site.toml is written there."),
    source: Path | None = typer.Option(
        None, "--from", help="A sample raw file (CSV, Parquet, JSON lines) to guess from."
    ),
    name: str | None = typer.Option(None, "--name", help="Site name (default: the folder's)."),
    columns: str | None = typer.Option(
        None, "--columns", help="Column names a,b,c in file order (headerless CSV)."
    ),
    *,
    header: bool | None = typer.Option(None, "--header/--no-header", help="Default: detect."),
    delimiter: str | None = typer.Option(None, "--delimiter", help="Default: sniff , ; tab |."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing site.toml."),
) -> None:
    """Write a commented site.toml, its schema guessed from a sample file (--from)."""
    from client.pipeline.init import inferred_table, init_site, split_names
    from client.pipeline.roles import TEXT_FEATURE

    names = split_names(columns)
    path, schema = init_site(
        directory, source, name, names, header=header, delimiter=delimiter, force=force
    )
    if schema is not None:
        print_fitted(console, inferred_table(schema))
        for column, spec in schema["columns"].items():
            if spec["role"] == "feature" and spec["type"] == "text":
                err_console.print(
                    f"warning: {column}: {TEXT_FEATURE}", highlight=False, markup=False
                )
    console.print(f"wrote {path}", highlight=False)
    console.print(
        f"review the ranges and roles, then run fedlife-site prepare -c {path}", highlight=False
    )


register_retention(app)
app.command("join")(join_command)
register_schedule(app)
register_verify(app)
register_classify(app)
register_backup(app)
register_open(app)


def main() -> None:
    # The store is the site's alone: every folder the site's commands make is 0700
    # and every file 0600 (Delta's writer and ours both honour the umask).
    os.umask(0o077)
    app()
