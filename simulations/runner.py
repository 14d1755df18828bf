"""``fedlife-sim run``: a whole federation of virtual sites on one machine.

The runner splits a dataset across virtual sites, writes each site's dirty raw file
and site.toml, runs each site's own ``prepare``, then runs the real ServerApp and
ClientApp on Flower's simulation engine (Ray backend).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from client.app import make_client_app
from client.prepare import prepare
from common.config import RunConfig, load_site_config
from common.errors import ConfigError, RunDirError
from server.app import make_server_app
from server.federation import RoundObserver
from server.run_dir import RunDirectory, default_run_dir
from simulations.annotator import LabelingSpec
from simulations.attacks import ScaleUpdates
from simulations.datasets import Dataset, load_dataset
from simulations.dirt import DirtSpec, inject
from simulations.partition import dirichlet, iid
from simulations.ray_runtime import check_reachable, private_ray
from simulations.sites import site_name, write_site


@dataclass(frozen=True)
class SimulationSpec:
    """One simulated federation.

    Parameters
    ----------
    dataset : bundled dataset name.
    sites : number of virtual sites.
    rounds : federated rounds.
    epsilon : each site's privacy budget; None trains without DP.
    delta : each site's delta.
    seed : seeds the split, the dirt, the model and the training.
    out : base folder of run directories (``runs``).
    run_dir : exact run directory ('' = ``<out>/<timestamp>``).
    strategy : Flower strategy name.
    partition : 'dirichlet' (label skew) or 'iid'.
    alpha : Dirichlet concentration; smaller is more skewed.
    test_fraction : share of rows held out for the coordinator's test split.
    dirt : dirt injected into every site's raw file.
    run_options : further run-config keys (``RunConfig`` field names), e.g.
        ``{"learning_rate": 0.5}``; the rest keep the run config's defaults.
    ray_address : an existing Ray cluster to use ('' = a private local one).
    sites_dir : existing, prepared virtual sites to run again (a run's ``sites/``,
        with the coordinator's ``test.csv`` beside it); '' = write new ones. Their
        stores, privacy ledgers included, carry over.
    poisoned_sites : sites whose updates are multiplied by ``poison_factor``
        (model poisoning, ``simulations.attacks.ScaleUpdates``).
    labeling : hide labels and answer the sites' queues (``simulations.annotator``).
    """

    dataset: str = "breast_cancer"
    sites: int = 5
    rounds: int = 15
    epsilon: float | None = 3.0
    delta: float = 1e-5
    seed: int = 0
    out: str = "runs"
    run_dir: str = ""
    strategy: str = "fedavg"
    partition: str = "dirichlet"
    alpha: float = 0.5
    test_fraction: float = 0.2
    dirt: DirtSpec = field(default_factory=DirtSpec)
    run_options: dict[str, Any] = field(default_factory=dict)
    ray_address: str = ""
    sites_dir: str = ""
    poisoned_sites: tuple[str, ...] = ()
    poison_factor: float = 100.0
    labeling: LabelingSpec = field(default_factory=LabelingSpec)

    def __post_init__(self) -> None:
        if self.sites < 1:
            raise ConfigError(f"--sites must be >= 1, got {self.sites}")
        if self.rounds < 1:
            raise ConfigError(f"--rounds must be >= 1, got {self.rounds}")
        if self.epsilon is not None and not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ConfigError(f"--epsilon must be > 0 or 'none', got {self.epsilon}")
        if self.partition not in ("dirichlet", "iid"):
            raise ConfigError(f"--partition must be 'dirichlet' or 'iid', got '{self.partition}'")
        if self.alpha <= 0:
            raise ConfigError(f"--alpha must be > 0, got {self.alpha}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test fraction must be in (0, 1), got {self.test_fraction}")


@dataclass(frozen=True)
class PlannedRun:
    """A validated simulation whose run directory exists: nothing left to reject."""

    spec: SimulationSpec
    dataset: Dataset
    run_dir: RunDirectory
    run_config: RunConfig


def plan(spec: SimulationSpec) -> PlannedRun:
    """Validate everything and create the run directory; raise before any work."""
    dataset = load_dataset(spec.dataset)
    if spec.ray_address:
        check_reachable(spec.ray_address)
    options = {
        "min_train_sites": min(2, spec.sites),
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
    return PlannedRun(spec, dataset, run_dir, run_config)


def run(spec: SimulationSpec | PlannedRun, on_round: RoundObserver | None = None) -> dict[str, Any]:
    """Run the simulated federation; return its summary (also in summary.json)."""
    started = time.monotonic()
    planned = spec if isinstance(spec, PlannedRun) else plan(spec)
    spec, run_dir = planned.spec, planned.run_dir
    if not planned.run_config.resume:
        run_dir.update_info(simulation=asdict(spec))  # what --resume needs to go on
    if planned.run_config.resume or spec.sites_dir:
        sites_dir, site_reports = Path(spec.sites_dir or run_dir.path / "sites"), {}
    else:
        sites_dir = run_dir.path / "sites"
        site_reports = materialise_sites(spec, planned.dataset, run_dir.path, sites_dir)
    mods = [ScaleUpdates(spec.poisoned_sites, spec.poison_factor)] if spec.poisoned_sites else []
    mods += spec.labeling.mods(str(sites_dir), spec.seed)
    summaries: list[dict[str, Any]] = []
    _quiet_flower()
    with private_ray(address=spec.ray_address or None) as init_args:
        from flwr.simulation import run_simulation

        run_simulation(
            server_app=make_server_app(planned.run_config, on_round, summaries.append),
            client_app=make_client_app(str(sites_dir), mods),
            num_supernodes=spec.sites,
            backend_config={"client_resources": {"num_cpus": 1}, "init_args": init_args},
        )
    summary = summaries[0]
    summary.update(
        dataset=spec.dataset,
        sites=spec.sites,
        partition=spec.partition if spec.partition == "iid" else f"dirichlet(alpha={spec.alpha})",
        site_data=site_reports,
        **spec.labeling.spent(sites_dir),
        wall_s=round(time.monotonic() - started, 3),
    )
    run_dir.write_json("summary.json", summary)
    return summary


def plan_resume(path: str | Path) -> PlannedRun:
    """A stopped simulation, ready to continue from its last checkpoint."""
    run_dir = RunDirectory.open_for_resume(path)
    info = run_dir.read_json("run.json")
    if "simulation" not in info:
        raise RunDirError(f"{run_dir.path}: not a fedlife-sim run (run.json has no simulation)")
    recorded = dict(info["simulation"])
    recorded["dirt"] = DirtSpec(**recorded["dirt"])
    recorded["poisoned_sites"] = tuple(recorded.get("poisoned_sites", ()))
    recorded["labeling"] = LabelingSpec(**recorded.get("labeling", {}))
    spec = SimulationSpec(**recorded)
    config = RunConfig.from_flower({**info["config"], "resume": True}, source=str(run_dir.path))
    done = run_dir.completed_rounds()
    if done:
        run_dir.load_checkpoint(done[-1]["round"])  # a corrupt one fails here, before any work
    return PlannedRun(spec, load_dataset(spec.dataset), run_dir, config)


def materialise_sites(spec, dataset, run_path: Path, sites_dir: Path) -> dict[str, Any]:
    """Split, dirty and write every virtual site, hold out the test split, prepare."""
    rng = np.random.default_rng(spec.seed)
    labels = dataset.frame[dataset.label].to_numpy()
    order = rng.permutation(len(labels))
    n_test = int(round(len(labels) * spec.test_fraction))
    test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    dataset.frame[test_rows.tolist()].write_csv(run_path / "test.csv")
    train = dataset.frame[train_rows.tolist()]
    train_labels = train[dataset.label].to_numpy()
    if spec.partition == "iid":
        parts = iid(len(train_labels), spec.sites, rng)
    else:
        parts = dirichlet(train_labels, spec.sites, spec.alpha, rng)
    reports = {}
    for index, rows in enumerate(parts):
        dirty, injected = inject(train[rows.tolist()], dataset.features, spec.dirt, rng)
        dirty = spec.labeling.hide(dirty, dataset.label, sites_dir / site_name(index), rng)
        path = write_site(sites_dir, index, dirty, dataset, spec.epsilon, spec.delta)
        result = prepare(load_site_config(path))
        reports[site_name(index)] = {
            "rows": len(rows),
            "label_counts": {
                str(k): int(v) for k, v in zip(*np.unique(train_labels[rows], return_counts=True))
            },
            "injected": injected,
            "found": {
                "duplicates_dropped": result.report.duplicates_dropped,
                "values_imputed": sum(result.report.imputed.values()),
                "values_clipped": sum(result.report.clipped.values()),
            },
            "gate": "pass" if result.gate_passed else "; ".join(result.gate_reasons),
        }
    return reports


class _DropDeprecationNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "deprecated" not in record.getMessage().lower()


def _quiet_flower() -> None:
    """Flower's INFO log would bury the progress bar; keep warnings and errors."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    logger = logging.getLogger("flwr")
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _DropDeprecationNotice) for f in logger.filters):
        logger.addFilter(_DropDeprecationNotice())
    for handler in logger.handlers:
        handler.addFilter(_DropDeprecationNotice())
