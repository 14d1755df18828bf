"""``fedlife-sim run``: a whole federation of virtual sites on one machine.

The runner splits a dataset across virtual sites, writes each site's dirty raw file
and site.toml, runs each site's own ``prepare``, then runs the real ServerApp and
ClientApp on Flower's simulation engine (Ray backend).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import ConfigError, RunDirError
from common.run_config import RunConfig
from server.run_dir import RunDirectory, default_run_dir
from simulations.data.datasets import Dataset, load_dataset
from simulations.data.dirt import DirtSpec
from simulations.data.materialise import Split, materialise_sites, split_rows
from simulations.data.sites import site_name
from simulations.report import write_report
from simulations.spec import LabelingSpec, SimulationSpec

if TYPE_CHECKING:
    from server.federation import RoundObserver
    from simulations.site_jobs import SiteObserver


@dataclass(frozen=True)
class PlannedRun:
    """A validated simulation whose run directory exists: nothing left to reject."""

    spec: SimulationSpec
    dataset: Dataset
    run_dir: RunDirectory
    run_config: RunConfig
    split: Split | None = None


def plan(spec: SimulationSpec) -> PlannedRun:
    """Validate everything and create the run directory; raise before any work."""
    dataset = load_dataset(spec.dataset, spec.label)
    split = None
    if not spec.sites_dir:
        split = split_rows(spec, dataset)  # too many sites, a bad column: fail here
        spec = replace(spec, sites=len(split.parts))
        check_site_names(spec)
    if spec.ray_address:
        from simulations.ray_runtime import check_reachable

        check_reachable(spec.ray_address)
    options = {
        "min_train_sites": min(2, spec.sites),
        "model": spec.model or dataset.model,
        **dataset.run_defaults,
        **spec.labeling.run_options(),
        **spec.run_options,
        "num_server_rounds": spec.rounds,
        "strategy": spec.strategy,
        "seed": spec.seed,
    }
    RunConfig.from_flower(options, source="simulation")  # fail before writing anything
    run_dir = RunDirectory.create(spec.run_dir or default_run_dir(spec.out))
    test_data = (Path(spec.sites_dir).parent if spec.sites_dir else run_dir.path) / "test.csv"
    if spec.sites_dir and not test_data.exists():
        test_data = ""  # existing sites without a coordinator's split: evaluate at the sites
    run_config = RunConfig.from_flower(
        {**options, "run_dir": str(run_dir.path), "test_data": str(test_data)},
        source="simulation",
    )
    return PlannedRun(spec, dataset, run_dir, run_config, split)


def check_site_names(spec: SimulationSpec) -> None:
    """Per-site dirt and drift must name sites the run has."""
    names = {site_name(i) for i in range(spec.sites)}
    unknown = sorted(({*spec.site_dirt, spec.drift_site} - {""}) - names)
    if unknown:
        raise ConfigError(
            f"no virtual site {unknown[0]}: sites are site-000 .. site-{spec.sites - 1:03d}"
        )
    if spec.drift_site and spec.sites < 3:
        raise ConfigError("--drift-site needs >= 3 sites: the drifted one is excluded")


def run(
    spec: SimulationSpec | PlannedRun,
    on_round: RoundObserver | None = None,
    on_site: SiteObserver | None = None,
) -> dict[str, Any]:
    """Run the simulated federation; return its summary (also in summary.json).

    Parameters
    ----------
    spec : the simulation, or one ``plan`` already validated.
    on_round : called after each federated round (progress).
    on_site : called as each site's preparation job finishes (progress).
    """
    # Ray, Flower, torch and the apps load here, not with the module: every CLI call
    # that only checks its options would pay for them.
    from flwr.simulation import run_simulation

    from client.app import make_client_app
    from server.app import make_server_app
    from simulations.attacks import ScaleUpdates
    from simulations.ray_runtime import private_ray
    from simulations.worker_errors import WORKER_ERRORS, worker_errors_to

    started = time.monotonic()
    planned = spec if isinstance(spec, PlannedRun) else plan(spec)
    spec, run_dir = planned.spec, planned.run_dir
    if not planned.run_config.resume:
        run_dir.update_info(simulation=asdict(spec))  # what --resume needs to go on
    sites_dir = Path(spec.sites_dir or run_dir.path / "sites")
    mods = [ScaleUpdates(spec.poisoned_sites, spec.poison_factor)] if spec.poisoned_sites else []
    mods += spec.labeling.mods(str(sites_dir), spec.seed)
    summaries: list[dict[str, Any]] = []
    quiet_flower()
    names = [site_name(i) for i in range(spec.sites)]
    with private_ray(address=spec.ray_address or None, sites=names) as init_args:
        if planned.run_config.resume or spec.sites_dir:
            site_reports, site_nodes = {}, {}
        else:
            site_reports, site_nodes = materialise_sites(
                spec, planned.dataset, run_dir.path, sites_dir, on_site
            )
            run_dir.write_json("sites.json", {"sites": site_reports, "nodes": site_nodes})
        if planned.run_config.he and not planned.run_config.resume:
            provision_he(sites_dir, spec.sites, run_dir)
        with worker_errors_to(run_dir.path / WORKER_ERRORS):
            run_simulation(
                server_app=make_server_app(planned.run_config, on_round, summaries.append),
                client_app=make_client_app(str(sites_dir), mods),
                num_supernodes=spec.sites,
                backend_config={"client_resources": {"num_cpus": 1}, "init_args": init_args},
            )
    summary = summaries[0]
    summary.update(
        dataset=spec.dataset,
        model=planned.run_config.model,
        sites=spec.sites,
        partition=describe_partition(spec),
        site_data=site_reports,
        **spec.labeling.spent(sites_dir),
        site_nodes=site_nodes,
        profile_excluded=run_dir.info().get("profile_excluded", []),
        noise_secret=not spec.reproducible,
        wall_s=round(time.monotonic() - started, 3),
    )
    run_dir.write_json("summary.json", summary)
    write_report(summary, run_dir.path / "report.md")
    # The ServerApp wrote report.html with its own wall time; the run's is longer
    # (sites, Ray): every report says the same figure as summary.json.
    from server.report.html import write_report as write_html_report

    write_html_report(run_dir)
    return summary


def provision_he(sites_dir: Path, sites: int, run_dir: RunDirectory) -> None:
    """Encrypted aggregation: the secret context beside each virtual site's site.toml,
    the public one in the run directory, as ``fedlife-coord provision --he`` does for
    real sites and the coordinator; the ServerApp and ClientApps load them the same way."""
    from common.he_keys import provision

    folders = [sites_dir / site_name(i) for i in range(sites)]
    run_dir.update_info(he_key_id=provision(folders, run_dir.path))


def plan_resume(path: str | Path) -> PlannedRun:
    """A stopped simulation, ready to continue from its last checkpoint."""
    run_dir = RunDirectory.open_for_resume(path)
    info = run_dir.read_json("run.json")
    if "simulation" not in info:
        raise RunDirError(f"{run_dir.path}: not a fedlife-sim run (run.json has no simulation)")
    recorded = dict(info["simulation"])
    recorded["dirt"] = DirtSpec(**recorded["dirt"])
    recorded["site_dirt"] = {k: DirtSpec(**v) for k, v in recorded.get("site_dirt", {}).items()}
    recorded["poisoned_sites"] = tuple(recorded.get("poisoned_sites", ()))
    recorded["labeling"] = LabelingSpec(**recorded.get("labeling", {}))
    spec = SimulationSpec(**recorded)
    config = RunConfig.from_flower({**info["config"], "resume": True}, source=str(run_dir.path))
    done = run_dir.completed_rounds()
    if done and config.he:
        from server.he_rounds import checkpoint_path, read_chunks

        read_chunks(checkpoint_path(run_dir, done[-1]["round"]))  # a truncated one fails here
    elif done:
        run_dir.load_checkpoint(done[-1]["round"])  # a corrupt one fails here, before any work
    return PlannedRun(spec, load_dataset(spec.dataset, spec.label), run_dir, config)


def describe_partition(spec: SimulationSpec) -> str:
    kind = spec.partition.partition(":")[0]
    return f"{kind}(alpha={spec.alpha})" if kind in ("dirichlet", "quantity") else spec.partition


class _DropDeprecationNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "deprecated" not in record.getMessage().lower()


def quiet_flower() -> None:
    """Flower's INFO log would bury the progress bar; keep warnings and errors."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    logger = logging.getLogger("flwr")
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _DropDeprecationNotice) for f in logger.filters):
        logger.addFilter(_DropDeprecationNotice())
    for handler in logger.handlers:
        handler.addFilter(_DropDeprecationNotice())
