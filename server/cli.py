"""``fedlife-coord``: what the coordinator's operator runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from common.cli import VERSION_OPTION, one_line_errors
from common.errors import RunDirError
from server.deploy import cli as deploy_cli
from server.lifecycle import cli as lifecycle_cli
from server.registry.registry import Registry
from server.registry.unlearn_cli import register as register_unlearning
from server.report.cli import report_command
from server.run_dir import RunDirectory
from server.serving import cli as serving_cli

app = typer.Typer(
    help="Coordinator: provision, start and run a federation; read runs and their models.",
    no_args_is_help=True,
    add_completion=False,
)
models_app = typer.Typer(help="The model registry of a run.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.command("report")(report_command)
console = Console()


def _run(path: Path) -> RunDirectory:
    run = RunDirectory(path)
    if not (run.path / "run.json").exists():
        raise RunDirError(f"{path}: not a fedlife run directory (no run.json)")
    return run


@app.command("summary")
@one_line_errors
def summary_command(run_dir: Path, *, as_json: bool = typer.Option(False, "--json")) -> None:
    """A run's final figures: accuracy, rounds, epsilon per site."""
    summary = _run(run_dir).read_json("summary.json")
    if as_json:
        print(json.dumps(summary))
        return
    table = Table(title=f"run {summary['run_id']}")
    table.add_column("site")
    table.add_column("epsilon spent", justify="right")
    for site, spent in summary["epsilon_spent"].items():
        table.add_row(site, "no DP" if spent is None else f"{spent:.3f}")
    console.print(table)
    console.print(f"test accuracy {summary['test_accuracy']} after {summary['rounds']} rounds")


@models_app.command("list")
@one_line_errors
def models_list(run_dir: Path) -> None:
    """Checkpoints of a run, with the sites and table versions that trained each."""
    registry = Registry(run_dir)
    table = Table(title=f"models of {registry.run.path}")
    for column in ("round", "checkpoint", "sites (table version)", "accuracy"):
        table.add_column(column)
    for record in registry.models():
        sites = ", ".join(f"{s['site']} (v{s['table_version']})" for s in record.sites)
        accuracy = record.metrics.get("accuracy")
        table.add_row(
            str(record.round),
            Path(record.path).name,
            sites or "-",
            "-" if accuracy is None else f"{accuracy:.4f}",
        )
    console.print(table)


@models_app.command("show")
@one_line_errors
def models_show(
    run_dir: Path,
    server_round: int = typer.Argument(..., metavar="ROUND", help="The checkpoint's round."),
    *,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One checkpoint's lineage: sites, table versions, epsilon, metrics, config hash."""
    record = Registry(run_dir).show(server_round)
    if as_json:
        print(json.dumps(record.to_json()))
        return
    console.print(f"round {record.round}  checkpoint {record.path}", highlight=False)
    console.print(
        f"run {record.run_id}  model {record.model}  strategy {record.strategy}  "
        f"config {record.config_hash}",
        highlight=False,
    )
    table = Table(title="sites aggregated in this round")
    for column in ("site", "table version", "epsilon", "budget", "examples"):
        table.add_column(column)
    for s in record.sites:
        table.add_row(
            s["site"],
            str(s["table_version"]),
            "no DP" if s["epsilon"] is None else f"{s['epsilon']:.3f}",
            "-" if not s["epsilon_budget"] else f"{s['epsilon_budget']:g}",
            str(s["num_examples"]),
        )
    console.print(table)
    metrics = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, int | float) else f"{k} {v}"
        for k, v in record.metrics.items()
    )
    console.print(f"metrics ({record.evaluated_on or 'none'}): {metrics or '-'}", highlight=False)


@models_app.command("export")
@one_line_errors
def models_export(
    run_dir: Path,
    out: Path = typer.Option(..., "--out", help="Folder to write the bundle to."),
    server_round: int | None = typer.Option(
        None, "--round", help="The checkpoint's round (default: the last)."
    ),
    *,
    force: bool = typer.Option(False, "--force", help="Replace a bundle already in --out."),
) -> None:
    """Write a checkpoint as state dict, TorchScript, ONNX, feature spec, lineage, card."""
    from server.serving.bundle import serving_files  # torch and ONNX: this command only

    registry = Registry(run_dir)
    for path in registry.export(server_round, out, force=force, extra=serving_files(registry)):
        print(path)
    RunDirectory(run_dir).audit().append("models-export", round=server_round, out=str(out))


register_unlearning(app, models_app)
lifecycle_cli.register(models_app)
lifecycle_cli.register_coordinator(app)


@app.callback()
def _group(show_version: bool = VERSION_OPTION) -> None:  # noqa: FBT001 (a typer flag)
    """Coordinator: provision, start and run a federation; read runs and their models."""


deploy_cli.register(app)
serving_cli.register(app, models_app)


def main() -> None:
    app()
