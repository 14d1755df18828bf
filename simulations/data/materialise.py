"""Turn a dataset into virtual sites: split, dirty, write, then each site prepares.

Splitting and writing run in the driver (cheap, and they need the whole dataset);
each site's ``prepare`` runs as a Ray task pinned to its site's node
(``simulations.site_jobs``), like a real site's own job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from common.errors import ConfigError
from simulations.data.datasets import Dataset
from simulations.data.dirt import DirtSpec, inject
from simulations.data.partition import dirichlet, iid, natural, quantity
from simulations.data.sites import prepare_site, site_name, write_site
from simulations.spec import LabelingSpec

if TYPE_CHECKING:
    from simulations.site_jobs import SiteObserver

DRIFT_SUFFIX = "_v2"


class SiteSpec(Protocol):
    """What materialising needs of a ``SimulationSpec``."""

    sites: int
    seed: int
    partition: str
    alpha: float
    test_fraction: float
    epsilon: float | None
    delta: float
    dirt: DirtSpec
    site_dirt: dict[str, DirtSpec]
    drift_site: str
    labeling: LabelingSpec


@dataclass(frozen=True)
class Split:
    """Which rows the coordinator holds out and which rows each site gets.

    Parameters
    ----------
    test_rows : row indices of the coordinator's test split.
    parts : per site, indices into the training rows.
    groups : per site, the natural group it holds (None for a random split).
    """

    test_rows: np.ndarray
    train_rows: np.ndarray
    parts: list[np.ndarray]
    groups: list[str] | None = None


def natural_column(partition: str, dataset: Dataset) -> str:
    """The column a ``natural`` / ``natural:COLUMN`` partition splits by."""
    column = partition.partition(":")[2] or dataset.natural
    if not column:
        raise ConfigError(
            f"dataset '{dataset.name}' has no natural split; "
            "name a column: --partition natural:COLUMN"
        )
    if column not in dataset.frame.columns:
        raise ConfigError(
            f"--partition natural:{column}: dataset '{dataset.name}' has no such column"
        )
    return column


def split_rows(spec: SiteSpec, dataset: Dataset) -> Split:
    """Hold out the test split, then split the rest by ``spec.partition`` (seeded)."""
    rng = np.random.default_rng(spec.seed)
    labels = dataset.frame[dataset.label].to_numpy()
    order = rng.permutation(len(labels))
    n_test = int(round(len(labels) * spec.test_fraction))
    test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    kind = spec.partition.partition(":")[0]
    groups = None
    if kind == "iid":
        parts = iid(len(train_rows), spec.sites, rng)
    elif kind == "quantity":
        parts = quantity(len(train_rows), spec.sites, spec.alpha, rng)
    elif kind == "natural":
        column = dataset.frame[natural_column(spec.partition, dataset)].to_numpy()
        parts, groups = natural(column[train_rows], spec.sites or None)
    else:
        parts = dirichlet(labels[train_rows], spec.sites, spec.alpha, rng)
    return Split(test_rows, train_rows, parts, groups)


def materialise_sites(
    spec: SiteSpec,
    dataset: Dataset,
    run_path: Path,
    sites_dir: Path,
    on_site: SiteObserver | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Write every virtual site and the test split, then prepare each site on Ray.

    Ray must be running, with a node offering each site's resource. Returns what
    each site holds, what was injected and what its pipeline found; and the Ray
    node each site's preparation ran on.
    """
    split = split_rows(spec, dataset)
    test = dataset.frame[split.test_rows.tolist()].select(dataset.site_columns)
    test.write_csv(run_path / "test.csv")
    train = dataset.frame[split.train_rows.tolist()]
    labels = train[dataset.label].to_numpy()
    classes = sorted(dataset.frame[dataset.label].drop_nulls().unique().to_list())
    rng = np.random.default_rng([spec.seed, 1])  # a stream of its own, apart from the split's
    reports, tomls = {}, {}
    for index, rows in enumerate(split.parts):
        name = site_name(index)
        dirt = spec.site_dirt.get(name, spec.dirt)
        site_data = dataset
        if name == spec.drift_site:
            site_data = dataset.renamed(dataset.features[0], dataset.features[0] + DRIFT_SUFFIX)
        dirty, injected = inject(
            site_data.frame[split.train_rows[rows].tolist()],
            site_data.features,
            dirt,
            rng,
            site_data.label,
            classes,
        )
        dirty = spec.labeling.hide(dirty, site_data.label, sites_dir / name, rng)
        if name == spec.drift_site:
            injected["schema_drift"] = f"{dataset.features[0]} -> {site_data.features[0]}"
        reproducible_seed = spec.seed if spec.reproducible else None
        toml = write_site(
            sites_dir,
            index,
            dirty,
            site_data,
            spec.epsilon,
            spec.delta,
            reproducible_seed=reproducible_seed,
        )
        tomls[name] = str(toml)
        counts = dict(zip(*np.unique(labels[rows], return_counts=True)))
        reports[name] = {
            "rows": len(rows),
            **({"group": split.groups[index]} if split.groups else {}),
            "label_counts": {str(k): int(v) for k, v in counts.items()},
            "injected": injected,
        }
    from simulations.site_jobs import run_per_site  # Ray: splitting alone needs none

    prepared = run_per_site(prepare_site, tomls, on_done=on_site)
    nodes = {}
    for name, outcome in prepared.items():
        reports[name]["found"] = outcome.get("result") or {"error": outcome["error"]}
        nodes[name] = outcome["node_id"]
    return reports, nodes
