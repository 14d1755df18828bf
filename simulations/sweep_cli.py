"""``fedlife-sim sweep``: a grid of runs, one table and one plot comparing them."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from common.cli import one_line_errors, progress_bar
from common.errors import ConfigError
from server.run_dir import default_run_dir, finite
from simulations.dirt import DirtSpec
from simulations.runner import SimulationSpec
from simulations.sweep import TABLE_COLUMNS, Grid, cell_text, run_sweep


def split_values(text: str, option: str, parse) -> tuple:
    """``"1,3,none"`` -> parsed values; a bad one is a one-line error naming ``option``."""
    values = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            values.append(parse(item))
        except (ValueError, ConfigError):
            raise ConfigError(f"{option}: '{item}' is not a valid value") from None
    return tuple(values)


@one_line_errors
def sweep_command(
    epsilon: str = typer.Option("3.0", help="Budgets to sweep, e.g. 1,3,none."),
    strategy: str = typer.Option("fedavg", help="Strategies to sweep, e.g. fedavg,fedmedian."),
    alpha: str = typer.Option("0.5", help="Concentrations to sweep, e.g. 0.5,5."),
    dataset: str = typer.Option("breast_cancer", help="Dataset, as for `run`."),
    label: str = typer.Option("", help="Label column of a csv:/dir: dataset."),
    model: str = typer.Option("", help="logreg, mlp or cnn (default: the dataset's own)."),
    sites: int = typer.Option(5, help="Number of virtual sites."),
    rounds: int = typer.Option(10, help="Federated rounds of every run."),
    partition: str = typer.Option("dirichlet", help="Partition, as for `run`."),
    seed: int = typer.Option(0, help="Seed of every run (same split and dirt per alpha)."),
    dirt: str = typer.Option("", help="Dirt of every site, KEY=VALUE,... as for `run`."),
    out: str = typer.Option("runs", help="Folder the sweep's folder goes into."),
    ray_address: str = typer.Option("", help="Existing Ray cluster (default: a private one)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the table as JSON."),
) -> None:
    """Run a grid of simulations (epsilon x strategy x alpha); write sweep.csv/.md/.png."""
    from simulations.cli import parse_epsilon

    grid = Grid(
        split_values(epsilon, "--epsilon", parse_epsilon),
        split_values(strategy, "--strategy", str),
        split_values(alpha, "--alpha", float),
    )
    base = SimulationSpec(
        dataset=dataset,
        label=label,
        model=model,
        sites=sites,
        rounds=rounds,
        partition=partition,
        seed=seed,
        dirt=DirtSpec().updated(dirt),
        ray_address=ray_address,
    )
    folder = default_run_dir(out)
    folder = folder.with_name(f"sweep-{folder.name}")
    total = len(grid.epsilons) * len(grid.strategies) * len(grid.alphas)
    with progress_bar("sweep", "{task.completed}/{task.total} runs") as progress:
        task = progress.add_task("", total=total)

        def on_run(index: int, count: int, summary: dict) -> None:
            description = f"last: accuracy {summary['test_accuracy']:.3f}"
            progress.update(task, completed=index, description=description)

        rows = run_sweep(grid, base, Path(folder), on_run)
    if as_json:
        print(json.dumps(finite({"folder": str(folder), "runs": rows})))
        return
    table = Table(title=f"fedlife sweep: {folder}")
    shown = [c for c in TABLE_COLUMNS if c != "run_dir"]
    for column in shown:
        table.add_column(column)
    for row in rows:
        table.add_row(*(cell_text(row[c]) for c in shown))
    Console().print(table)
    print(f"table: {folder / 'sweep.csv'} and sweep.md; plot: {folder / 'sweep.png'}")
