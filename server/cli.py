"""``fedlife-coord``: what the coordinator's operator runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from common.cli import one_line_errors
from common.errors import RunDirError
from server.run_dir import RunDirectory

app = typer.Typer(
    help="Coordinator: read runs and the models they produced.",
    no_args_is_help=True,
    add_completion=False,
)
models_app = typer.Typer(help="The model registry of a run.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()


def _run(path: Path) -> RunDirectory:
    run = RunDirectory(path)
    if not (run.path / "run.json").exists():
        raise RunDirError(f"{path}: not a fedlife run directory (no run.json)")
    return run


@app.command("summary")
@one_line_errors
def summary_command(run_dir: Path, as_json: bool = typer.Option(False, "--json")) -> None:
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
    run = _run(run_dir)
    table = Table(title=f"models of {run.path}")
    for column in ("round", "checkpoint", "sites (table version)", "accuracy"):
        table.add_column(column)
    for record in run.rounds():
        if "stopped" in record:
            continue
        sites = ", ".join(f"{p['site']} (v{p['table_version']})" for p in record["participants"])
        accuracy = (record["central"] or record["federated"]).get("accuracy")
        checkpoint = run.path / "models" / f"round-{record['round']:03d}.pt"
        table.add_row(
            str(record["round"]),
            checkpoint.name if checkpoint.exists() else "-",
            sites,
            "-" if accuracy is None else f"{accuracy:.4f}",
        )
    console.print(table)


@app.callback()
def _group() -> None:
    """Coordinator: read runs and the models they produced."""


def main() -> None:
    app()
