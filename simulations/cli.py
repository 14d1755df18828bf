"""``fedlife-sim``: run a federation of virtual sites on Ray."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.cli import err_console, one_line_errors
from common.errors import ConfigError
from server.federation import RoundReport
from server.run_dir import RunDirectory, finite
from simulations.annotator import LabelingSpec
from simulations.audit_cli import audit_command
from simulations.datasets import load_dataset
from simulations.runner import SimulationSpec, materialise_sites, plan, plan_resume, run

app = typer.Typer(
    help="Simulate a federation: virtual sites with their own data, trained with DP on Ray.",
    no_args_is_help=True,
    add_completion=False,
)


app.command("audit")(audit_command)


@app.callback()
def _group() -> None:
    """Simulate a federation: virtual sites with their own data, trained with DP on Ray."""


def parse_epsilon(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--epsilon must be a number > 0 or 'none', got '{text}'") from None


@app.command("run")
@one_line_errors
def run_command(
    dataset: str = typer.Option(
        "breast_cancer", help="Bundled dataset: breast_cancer, digits or synthetic_groups."
    ),
    sites: int = typer.Option(5, help="Number of virtual sites."),
    rounds: int = typer.Option(15, help="Federated training rounds."),
    epsilon: str = typer.Option("3.0", help="Privacy budget per site, or 'none' for no DP."),
    seed: int = typer.Option(0, help="Seeds the split, the dirt, the model and training."),
    strategy: str = typer.Option("fedavg", help="Flower strategy, e.g. fedavg, fedprox, krum."),
    partition: str = typer.Option("dirichlet", help="'dirichlet' (label skew) or 'iid'."),
    alpha: float = typer.Option(0.5, help="Dirichlet concentration (smaller = more skew)."),
    out: str = typer.Option("runs", help="Folder for run directories."),
    run_dir: str = typer.Option("", help="Exact run directory (default: OUT/<timestamp>)."),
    normalization: str = typer.Option(
        "range", help="'range' (public ranges, free) or 'moments' (DP moments from the sites)."
    ),
    ray_address: str = typer.Option("", help="Existing Ray cluster (default: a private one)."),
    resume: Path | None = typer.Option(
        None, help="Continue this stopped run from its last checkpoint (other options ignored)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only the summary JSON on stdout."),
    unlabeled: float = typer.Option(0.0, help="Share of labels hidden at each site (0 = none)."),
    label_budget: int = typer.Option(10, help="Labels a simulated annotator gives per round."),
    annotator_error: float = typer.Option(0.0, help="Chance an annotator's answer is wrong."),
) -> None:
    """Run the whole lifecycle on virtual sites: split, dirty, prepare, train with DP."""
    spec = SimulationSpec(
        dataset=dataset,
        sites=sites,
        rounds=rounds,
        epsilon=parse_epsilon(epsilon),
        seed=seed,
        strategy=strategy,
        partition=partition,
        alpha=alpha,
        out=out,
        run_dir=run_dir,
        ray_address=ray_address,
        run_options={"normalization": normalization},
        labeling=LabelingSpec(unlabeled, label_budget, annotator_error),
    )
    planned = plan_resume(resume) if resume else plan(spec)
    spec = planned.spec
    with Progress(
        TextColumn("[bold]federated rounds"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    ) as progress:
        task = progress.add_task("starting sites", total=spec.rounds)

        def on_round(report: RoundReport) -> None:
            accuracy = (report.central or report.federated).get("accuracy", math.nan)
            progress.update(
                task,
                completed=report.round,
                description=f"accuracy {accuracy:.3f}, {len(report.participants)} sites",
            )

        summary = run(planned, on_round)
    if as_json:
        print(json.dumps(finite(summary)))
    else:
        print_summary(summary, Console())


@app.command("sites")
@one_line_errors
def sites_command(
    out: Path = typer.Option(..., help="Folder to write sites/ and test.csv into."),
    dataset: str = typer.Option(
        "breast_cancer", help="Bundled dataset: breast_cancer, digits or synthetic_groups."
    ),
    sites: int = typer.Option(5, help="Number of virtual sites."),
    epsilon: str = typer.Option("3.0", help="Privacy budget per site, or 'none' for no DP."),
    seed: int = typer.Option(0, help="Seeds the split and the dirt."),
    alpha: float = typer.Option(0.5, help="Dirichlet concentration (smaller = more skew)."),
) -> None:
    """Only write (and prepare) the virtual sites, for running them with `flwr run .`."""
    spec = SimulationSpec(
        dataset=dataset, sites=sites, epsilon=parse_epsilon(epsilon), seed=seed, alpha=alpha
    )
    root = RunDirectory.create(out).path.resolve()
    materialise_sites(spec, load_dataset(dataset), root, root / "sites")
    config = f'sites-dir="{root / "sites"}" test-data="{root / "test.csv"}"'
    print(f"{sites} sites in {root / 'sites'}; run them with:")
    print(f"  flwr run . local --stream --run-config '{config}'")


def print_summary(summary: dict, console: Console) -> None:
    table = Table(title=f"fedlife run: {summary['run_dir']}")
    table.add_column("site")
    table.add_column("rows", justify="right")
    table.add_column("dirt found (dup / imputed / clipped)", justify="right")
    table.add_column("epsilon spent", justify="right")
    table.add_column("budget", justify="right")
    for site, info in summary["site_data"].items():
        found = info["found"]
        spent = summary["epsilon_spent"].get(site)
        budget = summary["epsilon_budget"].get(site)
        dirt = (found["duplicates_dropped"], found["values_imputed"], found["values_clipped"])
        table.add_row(
            site,
            str(info["rows"]),
            " / ".join(map(str, dirt)),
            "no DP" if spent is None else f"{spent:.3f}",
            "-" if budget is None else f"{budget:g}",
        )
    console.print(table)
    accuracy = summary["test_accuracy"]
    console.print(
        f"test accuracy [bold]{accuracy:.4f}[/bold] after {summary['rounds']} rounds "
        f"({summary['evaluated_on']}), {summary['wall_s']:.1f} s"
    )
    if summary["stopped_reason"]:
        console.print(f"[yellow]stopped early:[/yellow] {summary['stopped_reason']}")


def main() -> None:
    app()
