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
from simulations.data.dirt import DirtSpec
from simulations.options import parse_epsilon
from simulations.spec import SimulationSpec
from simulations.sweep import TABLE_COLUMNS, Grid, across_seeds, cell_text, run_sweep


def split_values(text: str, option: str, parse) -> tuple:
    """``"1,3,none"`` -> parsed values; a bad one is a one-line error naming ``option``."""
    values = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            values.append(parse(item))
        except (ValueError, ConfigError):
            raise ConfigError(f"{option}: '{item}' is not a valid value") from None
    return tuple(values)


def split_seeds(text: str) -> tuple[int, ...]:
    """``"0"``, ``"1,4,9"`` or ``"1-23"`` (both ends included) -> the seeds, in order."""
    spans = split_values(text, "--seed", _seed_span)
    return tuple(seed for span in spans for seed in span)


def _seed_span(item: str) -> range:
    first, _, last = item.partition("-")
    span = range(int(first), int(last or first) + 1)
    if int(first) < 0 or not span:
        raise ValueError(item)
    return span


@one_line_errors
def sweep_command(
    epsilon: str = typer.Option(
        str(SimulationSpec.default("epsilon")), help="Budgets to sweep, e.g. 1,3,none."
    ),
    strategy: str = typer.Option(
        SimulationSpec.default("strategy"), help="Strategies to sweep, e.g. fedavg,fedmedian."
    ),
    alpha: str = typer.Option(
        str(SimulationSpec.default("alpha")), help="Concentrations to sweep, e.g. 0.5,5."
    ),
    dataset: str = typer.Option(SimulationSpec.default("dataset"), help="Dataset, as for `run`."),
    label: str = typer.Option("", help="Label column of a csv:/dir: dataset."),
    model: str = typer.Option("", help="logreg, mlp or cnn (default: the dataset's own)."),
    sites: int = typer.Option(SimulationSpec.default("sites"), help="Number of virtual sites."),
    rounds: int = typer.Option(
        SimulationSpec.default("rounds"), help="Federated rounds of every run."
    ),
    partition: str = typer.Option(
        SimulationSpec.default("partition"), help="Partition, as for `run`."
    ),
    seed: str = typer.Option(
        str(SimulationSpec.default("seed")),
        help="Seeds to sweep, e.g. 0, 1,4,9 or 1-23 (each: its own split, dirt, training).",
    ),
    dirt: str = typer.Option("", help="Dirt of every site, KEY=VALUE,... as for `run`."),
    out: str = typer.Option(
        SimulationSpec.default("out"), help="Folder the sweep's folder goes into."
    ),
    ray_address: str = typer.Option("", help="Existing Ray cluster (default: a private one)."),
    *,
    as_json: bool = typer.Option(False, "--json", help="Print only the table as JSON."),
    reproducible: bool = typer.Option(
        False,
        "--reproducible",
        help="Derive the sites' DP noise from --seed: runs repeat bit for bit, and the "
        "noise is no secret (summary.json: noise_secret false). Research only.",
    ),
) -> None:
    """Run a grid of simulations (epsilon x strategy x alpha x seed); write sweep.csv/.md/.png."""

    grid = Grid(
        split_values(epsilon, "--epsilon", parse_epsilon),
        split_values(strategy, "--strategy", str),
        split_values(alpha, "--alpha", float),
        split_seeds(seed),
    )
    base = SimulationSpec(
        dataset=dataset,
        label=label,
        model=model,
        sites=sites,
        rounds=rounds,
        partition=partition,
        dirt=DirtSpec().updated(dirt),
        ray_address=ray_address,
        reproducible=reproducible,
    )
    folder = default_run_dir(out)
    folder = folder.with_name(f"sweep-{folder.name}")
    with progress_bar("sweep", "{task.completed}/{task.total} runs") as progress:
        task = progress.add_task("", total=grid.size)

        def on_run(index: int, count: int, summary: dict) -> None:
            description = f"last: accuracy {summary['test_accuracy']:.3f}"
            progress.update(task, completed=index, description=description)

        rows = run_sweep(grid, base, Path(folder), on_run)
    summary = across_seeds(rows)
    if as_json:
        print(json.dumps(finite({"folder": str(folder), "runs": rows, "across_seeds": summary})))
        return
    console = Console()
    console.print(rich_table(f"fedlife sweep: {folder}", rows, TABLE_COLUMNS[:-1]))
    if summary:
        console.print(rich_table("across seeds", summary, tuple(summary[0])))
    print(f"table: {folder / 'sweep.csv'} and sweep.md; plot: {folder / 'sweep.png'}")


def rich_table(title: str, rows: list[dict], columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(cell_text(row[c]) for c in columns))
    return table
