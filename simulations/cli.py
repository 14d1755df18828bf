"""``fedlife-sim``: run a federation of virtual sites on Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from common.cli import VERSION_OPTION, one_line_errors, progress_bar
from common.run_config import RunConfig
from server.report.progress import round_line
from server.report.terminal import print_report
from server.round_report import RoundReport, round_record
from server.run_dir import finite, writable_folder
from simulations.audit.cli import audit_command
from simulations.data.dirt import DirtSpec
from simulations.options import default_sites, parse_epsilon, parse_site_dirt
from simulations.retain_cli import retain_command
from simulations.retrain_cli import retrain_command
from simulations.spec import LabelingSpec, SimulationSpec
from simulations.sweep_cli import sweep_command

if TYPE_CHECKING:
    from simulations.runner import PlannedRun

app = typer.Typer(
    help="Simulate a federation: virtual sites with their own data, trained with DP on Ray.",
    no_args_is_help=True,
    add_completion=False,
)


DATASET_HELP = (
    "breast_cancer, digits, synthetic_groups, heart_disease (from ../shared), "
    "csv:PATH (CSV or Parquet) or dir:PATH (one file per site)."
)
PARTITION_HELP = (
    "dirichlet (label skew), iid, quantity (size skew), natural (the dataset's groups) "
    "or natural:COLUMN."
)
DIRT_HELP = (
    "Dirt of every site, KEY=VALUE,...: duplicates, missing, outliers, outlier_factor, "
    "label_noise, hidden_labels, missing.COLUMN."
)


app.command("audit")(audit_command)


@app.callback()
def _group(show_version: bool = VERSION_OPTION) -> None:  # noqa: FBT001 (a typer flag)
    """Simulate a federation: virtual sites with their own data, trained with DP on Ray."""


@app.command("run")
@one_line_errors
def run_command(
    dataset: str = typer.Option(SimulationSpec.default("dataset"), help=DATASET_HELP),
    label: str = typer.Option("", help="Label column of a csv:/dir: dataset (default: guess)."),
    model: str = typer.Option("", help="logreg, mlp or cnn (default: the dataset's own)."),
    sites: int | None = typer.Option(
        None,
        help=f"Number of virtual sites (default: {SimulationSpec.default('sites')}; "
        "natural: one per group).",
    ),
    rounds: int = typer.Option(SimulationSpec.default("rounds"), help="Federated training rounds."),
    epsilon: str = typer.Option(
        str(SimulationSpec.default("epsilon")), help="Privacy budget per site, or 'none' for no DP."
    ),
    seed: int = typer.Option(
        SimulationSpec.default("seed"), help="Seeds the split, the dirt, the model and training."
    ),
    strategy: str = typer.Option(
        SimulationSpec.default("strategy"), help="Flower strategy, e.g. fedavg, fedprox, krum."
    ),
    partition: str = typer.Option(SimulationSpec.default("partition"), help=PARTITION_HELP),
    alpha: float = typer.Option(
        SimulationSpec.default("alpha"), help="Dirichlet concentration (smaller = more skew)."
    ),
    dirt: str = typer.Option("", help=DIRT_HELP),
    site_dirt: list[str] = typer.Option([], help="SITE:KEY=VALUE,... dirt of one site."),
    drift_site: str = typer.Option("", help="Site whose schema drifted (a renamed column)."),
    out: str = typer.Option(SimulationSpec.default("out"), help="Folder for run directories."),
    run_dir: str = typer.Option("", help="Exact run directory (default: OUT/<timestamp>)."),
    normalization: str = typer.Option(
        RunConfig().normalization,
        help="'centers' (public ranges, centered on DP means from the sites), 'range' "
        "(public ranges only, free) or 'moments' (DP means and spreads).",
    ),
    ray_address: str = typer.Option("", help="Existing Ray cluster (default: a private one)."),
    resume: Path | None = typer.Option(
        None, help="Continue this stopped run from its last checkpoint (other options ignored)."
    ),
    *,
    as_json: bool = typer.Option(False, "--json", help="Print only the summary JSON on stdout."),
    unlabeled: float = typer.Option(
        LabelingSpec.unlabeled, help="Share of labels hidden at each site (0 = none)."
    ),
    label_budget: int = typer.Option(
        LabelingSpec.budget, help="Labels a simulated annotator gives per round."
    ),
    annotator_error: float = typer.Option(
        LabelingSpec.error_rate, help="Chance an annotator's answer is wrong."
    ),
    reproducible: bool = typer.Option(
        False,
        "--reproducible",
        help="Derive the sites' DP noise from --seed: runs repeat bit for bit, and the "
        "noise is no secret (summary.json: noise_secret false). Research only.",
    ),
    he: bool = typer.Option(
        False,
        "--he",
        help="Encrypted aggregation (TenSEAL CKKS): sites send ciphertexts, the coordinator "
        "sums them with the public context only; fedavg or fedprox, federated evaluation only.",
    ),
) -> None:
    """Run the whole lifecycle on virtual sites: split, dirty, prepare, train with DP."""
    default_dirt = DirtSpec().updated(dirt)
    spec = SimulationSpec(
        dataset=dataset,
        label=label,
        model=model,
        sites=default_sites(sites, partition, SimulationSpec.default("sites")),
        rounds=rounds,
        epsilon=parse_epsilon(epsilon),
        seed=seed,
        strategy=strategy,
        partition=partition,
        alpha=alpha,
        dirt=default_dirt,
        site_dirt=parse_site_dirt(site_dirt, default_dirt),
        drift_site=drift_site,
        out=out,
        run_dir=run_dir,
        ray_address=ray_address,
        run_options={"normalization": normalization, **({"he": True} if he else {})},
        labeling=LabelingSpec(unlabeled, label_budget, annotator_error),
        reproducible=reproducible,
    )
    from simulations.runner import plan, plan_resume  # not needed to reject bad options

    planned = plan_resume(resume) if resume else plan(spec)
    summary = run_with_progress(planned)
    if as_json:
        print(json.dumps(finite(summary)))
    else:
        print_report(summary, Console())


def run_with_progress(planned: PlannedRun) -> dict:
    """Run with one progress bar for the whole run: each site's preparation, then rounds."""
    from simulations.runner import run

    spec = planned.spec
    fresh = not (planned.run_config.resume or spec.sites_dir)
    steps = spec.sites * fresh + spec.rounds
    with progress_bar("{task.fields[stage]}", "{task.completed}/{task.total}") as progress:
        stage = "preparing sites" if fresh else "federated rounds"
        task = progress.add_task("starting Ray", total=steps, stage=stage)

        def on_site(site: str, outcome: dict) -> None:
            found = outcome.get("result") or {}
            note = outcome.get("error") or f"{found.get('rows_clean', 0)} clean rows"
            progress.update(task, advance=1, description=f"{site}: {note}")

        def on_round(report: RoundReport) -> None:
            progress.update(  # the bar now counts rounds only: 15/15, not 20/20
                task,
                total=spec.rounds,
                completed=report.round,
                stage="federated rounds",
                description=round_line(round_record(report)),
            )

        return run(planned, on_round, on_site)


@app.command("sites")
@one_line_errors
def sites_command(
    out: Path = typer.Option(..., help="Folder to write sites/ and test.csv into."),
    dataset: str = typer.Option(SimulationSpec.default("dataset"), help=DATASET_HELP),
    sites: int = typer.Option(SimulationSpec.default("sites"), help="Number of virtual sites."),
    epsilon: str = typer.Option(
        str(SimulationSpec.default("epsilon")), help="Privacy budget per site, or 'none' for no DP."
    ),
    seed: int = typer.Option(SimulationSpec.default("seed"), help="Seeds the split and the dirt."),
    alpha: float = typer.Option(
        SimulationSpec.default("alpha"), help="Dirichlet concentration (smaller = more skew)."
    ),
) -> None:
    """Only write (and prepare) the virtual sites, for running them with `flwr run .`."""
    from simulations.data.datasets import load_dataset
    from simulations.data.materialise import materialise_sites, split_rows
    from simulations.data.sites import site_name
    from simulations.ray_runtime import private_ray

    spec = SimulationSpec(
        dataset=dataset, sites=sites, epsilon=parse_epsilon(epsilon), seed=seed, alpha=alpha
    )
    loaded = load_dataset(dataset)
    split_rows(spec, loaded)  # too many sites: fail before writing anything
    root = writable_folder(out, what="output folder").resolve()
    with private_ray(sites=[site_name(i) for i in range(sites)]):
        materialise_sites(spec, loaded, root, root / "sites")
    config = f'sites-dir="{root / "sites"}" test-data="{root / "test.csv"}"'
    print(f"{sites} sites in {root / 'sites'}; run them with:")
    print(f"  flwr run . local --stream --run-config '{config}'")


app.command("sweep")(sweep_command)
app.command("retain")(retain_command)
app.command("retrain")(retrain_command)


def main() -> None:
    app()
