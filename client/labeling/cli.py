"""``fedlife-site label ...``: label the site's rows where they sit."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from client.labeling.importing import import_labels
from client.labeling.labels import given_labels, labeled_rows
from client.labeling.weak import weak_labels
from client.sealed_files import plain_path, write_sealed
from client.site import Site
from common.cli import one_line_errors
from common.config import load_site_config
from common.errors import ConfigError

app = typer.Typer(
    help="Label the site's rows: import labels, weak supervision, active learning, quality.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
CONFIG = typer.Option(..., "--config", "-c", help="The site's site.toml.")
AS_JSON = typer.Option(False, "--json", help="Print one JSON object instead of tables.")


def _site(config: Path) -> Site:
    site = Site(load_site_config(config))
    _ = site.clean  # no clean table yet: a one-line error before anything else
    return site


@app.command("import")
@one_line_errors
def import_command(
    file: Path = typer.Argument(..., help="CSV or Parquet with row_id, label[, annotator]."),
    config: Path = CONFIG,
    annotator: str | None = typer.Option(None, help="Who labeled (rows without an annotator)."),
    *,
    as_json: bool = AS_JSON,
) -> None:
    """Merge labels into a new version of the labeled table; refused ones are listed."""
    site = _site(config)
    report = import_labels(site.store, site.config, file, annotator)
    found = {
        "version": report.version.version if report.version else None,
        "applied": report.applied,
        "unanswered": report.unanswered,
        "duplicates": report.duplicates,
        "unknown_ids": report.unknown_ids,
        "unknown_classes": report.unknown_classes,
        "conflicting_ids": report.conflicting_ids,
    }
    if as_json:
        print(json.dumps(found))
        return
    applied = ", ".join(f"{n} {source}" for source, n in report.applied.items())
    console.print(f"labeled version {found['version']}: applied {applied}", highlight=False)
    for what, items in (
        ("unknown ids (not applied)", report.unknown_ids),
        ("ids with conflicting labels (not applied)", report.conflicting_ids),
    ):
        if items:
            console.print(f"{len(items)} {what}: {', '.join(items[:20])}", highlight=False)
    if report.unknown_classes:
        shown = ", ".join(f"'{c}' x{n}" for c, n in report.unknown_classes.items())
        console.print(f"labels that are not a class (not applied): {shown}", highlight=False)
    if report.unanswered:
        console.print(f"{report.unanswered} row(s) without a label skipped", highlight=False)


@app.command("functions")
@one_line_errors
def functions_command(
    config: Path = CONFIG,
    *,
    apply: bool = typer.Option(False, "--apply", help="Write the weak labels (a new version)."),
    threshold: float | None = typer.Option(None, help="Confidence a weak label needs."),
    as_json: bool = AS_JSON,
) -> None:
    """Coverage, overlaps, conflicts and estimated accuracy of the labeling functions."""
    site = _site(config)
    threshold = site.config.labeling.threshold if threshold is None else threshold
    if not 0 <= threshold <= 1:
        raise ConfigError(f"--threshold must be within [0, 1], got {threshold}")
    found = weak_labels(site.store, site.config, threshold, apply=apply)
    summary = {
        "functions": found.functions.to_dicts(),
        "unlabeled_rows": found.candidates,
        "weak_labels": found.labeled,
        "threshold": threshold,
        "version": found.version.version if found.version else None,
    }
    if as_json:
        print(json.dumps(summary))
        return
    table = Table(title=f"labeling functions of {site.name}")
    for column in found.functions.columns:
        table.add_column(
            column.replace("_", " "), justify="left" if column in ("function", "label") else "right"
        )
    for row in found.functions.iter_rows():
        table.add_row(
            *(f"{v:.3f}" if isinstance(v, float) else "" if v is None else str(v) for v in row)
        )
    console.print(table)
    verb = "labeled" if found.version else "would label"
    line = (
        f"{verb} {found.labeled} of {found.candidates} unlabeled rows at confidence >= {threshold}"
    )
    if found.version:
        line += f" (labeled version {found.version.version})"
    console.print(line, highlight=False)


@app.command("queue")
@one_line_errors
def queue_command(
    config: Path = CONFIG,
    model: str | None = typer.Option(
        None, help="Exported model folder, TorchScript file or run dir."
    ),
    size: int | None = typer.Option(None, help="Rows to queue (default labeling.queue_size)."),
    strategy: str | None = typer.Option(None, help="entropy or margin (labeling.strategy)."),
    *,
    diverse: bool = typer.Option(False, "--diverse", help="Spread the queue over the data."),
    as_json: bool = AS_JSON,
) -> None:
    """Queue the unlabeled rows the model is least sure of, with a CSV for annotators."""
    site = _site(config)
    labeling = site.config.labeling
    from client.labeling.active import refresh_queue, resolve_model  # torch: only for the queue

    scorer = resolve_model(site.config, model)
    queue = refresh_queue(
        site.store,
        site.config,
        scorer,
        size or labeling.queue_size,
        strategy or labeling.strategy,
        diverse=diverse,
    )
    found = {
        "version": queue.version.version,
        "rows": queue.rows.height,
        "csv": str(queue.csv),
        "candidates": queue.candidates,
        "model": scorer.source,
    }
    if as_json:
        print(json.dumps(found))
        return
    console.print(
        f"queue version {queue.version.version}: {queue.rows.height} of {queue.candidates} "
        f"unlabeled rows; the sheet for annotators, sealed: {queue.csv}",
        highlight=False,
        soft_wrap=True,
    )
    plain = plain_path(queue.csv).name
    console.print(
        f"open it: fedlife-site open {queue.csv} -c {config} --out {plain}; the annotator "
        f"fills in 'label', then: fedlife-site label import {plain} -c {config}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("quality")
@one_line_errors
def quality_command(
    config: Path = CONFIG,
    folds: int = typer.Option(5, help="Cross-validation folds."),
    top: int = typer.Option(20, help="Suspected errors to show."),
    *,
    as_json: bool = AS_JSON,
) -> None:
    """Likely label errors (confident learning), class balance and annotator agreement."""
    site = _site(config)
    rows = labeled_rows(site.store, site.config, sources=True)
    from client.labeling.quality import label_quality  # cleanlab and sklearn: only here

    found = label_quality(rows, site.declared_spec(), given_labels(site.store), folds)
    plain_report = site.config.store_dir / "reports" / "label_issues.csv"
    report = write_sealed(
        site.config.store_dir, plain_report, found.suspects.write_csv().encode("utf-8")
    )
    summary = {
        "rows": found.rows,
        "suspected_errors": found.suspects.height,
        "suspects": found.suspects.head(top).to_dicts(),
        "balance": found.balance.to_dicts(),
        "agreement": found.agreement,
        "report": str(report),
    }
    if as_json:
        print(json.dumps(summary))
        return
    table = Table(title=f"{found.suspects.height} suspected label errors of {found.rows} rows")
    for column in found.suspects.columns:
        table.add_column(column.replace("_", " "))
    for row in found.suspects.head(top).iter_rows():
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    balance = Table(title="class balance")
    for column in ("class", "source", "rows"):
        balance.add_column(column)
    for row in found.balance.iter_rows():
        balance.add_row(*map(str, row))
    console.print(balance)
    fleiss = found.agreement["fleiss"]
    console.print(
        f"annotators: {found.agreement['annotators']}; Fleiss' kappa: "
        + (f"{fleiss['kappa']:.3f} on {fleiss['rows']} rows" if fleiss else "n/a (no shared rows)"),
        highlight=False,
    )
    for pair, info in found.agreement["cohen"].items():
        console.print(
            f"Cohen's kappa {pair}: {info['kappa']} on {info['rows']} rows", highlight=False
        )
    console.print(
        f"all suspects in {report} (nothing was dropped)", highlight=False, soft_wrap=True
    )
