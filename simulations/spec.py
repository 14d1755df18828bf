"""What a simulation is: :class:`SimulationSpec` and its :class:`LabelingSpec`.

Validated settings, apart from the code that runs them: ``fedlife-sim`` builds them
from its options and rejects bad ones without loading Ray, Flower or torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import PrivacySection
from common.errors import ConfigError
from common.run_config import RunConfig
from simulations.data.dirt import DirtSpec

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from simulations.data.annotator import SimulatedAnnotator

PARTITIONS = ("dirichlet", "iid", "quantity", "natural")


@dataclass(frozen=True)
class LabelingSpec:
    """Labeling in a simulation (off unless ``unlabeled`` > 0).

    Parameters
    ----------
    unlabeled : share of each site's labels hidden from it.
    budget : labels the simulated annotator gives each site per round (also the size
        of the queue the ClientApp refreshes after each round).
    error_rate : chance one of its answers is wrong.
    """

    unlabeled: float = 0.0
    budget: int = 10
    error_rate: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.unlabeled < 1:
            raise ConfigError(f"--unlabeled must be in [0, 1), got {self.unlabeled}")
        if self.budget < 1:
            raise ConfigError(f"--label-budget must be >= 1, got {self.budget}")
        if not 0 <= self.error_rate <= 1:
            raise ConfigError(f"--annotator-error must be in [0, 1], got {self.error_rate}")

    @property
    def enabled(self) -> bool:
        return self.unlabeled > 0

    def run_options(self) -> dict[str, int]:
        return {"label_queue_size": self.budget} if self.enabled else {}

    def mods(self, sites_dir: str, seed: int) -> list[SimulatedAnnotator]:
        if not self.enabled:
            return []
        from simulations.data.annotator import SimulatedAnnotator

        return [SimulatedAnnotator(sites_dir, self.budget, self.error_rate, seed)]

    def hide(
        self, rows: pl.DataFrame, label: str, site_dir: Path, rng: np.random.Generator
    ) -> pl.DataFrame:
        """The site's rows with labels hidden; the truth written beside the site."""
        if not self.enabled:
            return rows
        from simulations.data.annotator import TRUTH, hide_labels

        blanked, truth = hide_labels(rows, label, self.unlabeled, rng)
        site_dir.mkdir(parents=True, exist_ok=True)
        truth.write_csv(site_dir / TRUTH)
        return blanked

    def spent(self, sites_dir: Path) -> dict[str, dict[str, int]]:
        """Labels the annotator gave each site over the run (for the summary)."""
        if not self.enabled:
            return {}
        import polars as pl

        from client.labeling.labels import given_labels
        from client.store import SiteStore
        from common.config import load_site_config
        from simulations.data.annotator import ANNOTATOR

        spent = {}
        for site_toml in sorted(Path(sites_dir).glob("*/site.toml")):
            given = given_labels(SiteStore(load_site_config(site_toml).store_dir))
            spent[site_toml.parent.name] = given.filter(pl.col("annotator") == ANNOTATOR).height
        return {"labels_spent": spent}


# Defaults a simulation shares with a site's policy and a federation's run config.
_RUN, _PRIVACY = RunConfig(), PrivacySection()


@dataclass(frozen=True)
class SimulationSpec:
    """One simulated federation.

    Parameters
    ----------
    dataset : bundled dataset name, ``csv:PATH`` or ``dir:PATH``.
    label : label column of a ``csv:``/``dir:`` dataset ('' = guess it by name).
    model : architecture of ``common.models`` ('' = the one the dataset suits).
    sites : number of virtual sites (0 with a natural partition: one per group).
    rounds : federated rounds.
    epsilon : each site's privacy budget; None trains without DP.
    delta : each site's delta.
    seed : seeds the split, the dirt, the model and the training.
    out : base folder of run directories (``runs``).
    run_dir : exact run directory ('' = ``<out>/<timestamp>``).
    strategy : Flower strategy name.
    partition : 'dirichlet' (label skew), 'iid', 'quantity' (size skew), 'natural'
        (the dataset's own groups) or 'natural:COLUMN' (one site per value).
    alpha : Dirichlet concentration of label or quantity skew; smaller is more skewed.
    test_fraction : share of rows held out for the coordinator's test split.
    dirt : dirt injected into every site's raw file.
    site_dirt : per-site dirt replacing ``dirt`` (site name -> spec).
    drift_site : the site whose schema drifted: its first feature is renamed.
    run_options : further run-config keys (``RunConfig`` field names), e.g.
        ``{"learning_rate": 0.5}``; the rest keep the run config's defaults.
    ray_address : an existing Ray cluster to use ('' = a private local one).
    sites_dir : existing, prepared virtual sites to run again (a run's ``sites/``,
        with the coordinator's ``test.csv`` beside it); '' = write new ones. Their
        stores, privacy ledgers included, carry over.
    poisoned_sites : sites whose updates are multiplied by ``poison_factor``
        (model poisoning, ``simulations.attacks.ScaleUpdates``).
    labeling : hide labels and answer the sites' queues (``simulations.data.annotator``).
    reproducible : derive the virtual sites' DP secrets from ``seed``, with no fresh
        draw per release, so two runs are bit-identical; by default each site draws
        its secret from the OS, as a real site does, and runs differ.
    """

    dataset: str = "breast_cancer"
    label: str = ""
    model: str = ""
    sites: int = 5
    rounds: int = _RUN.num_server_rounds
    epsilon: float | None = _PRIVACY.epsilon_budget
    delta: float = _PRIVACY.delta
    seed: int = _RUN.seed
    out: str = "runs"
    run_dir: str = ""
    strategy: str = _RUN.strategy
    partition: str = "dirichlet"
    alpha: float = 0.5
    test_fraction: float = 0.2
    dirt: DirtSpec = field(default_factory=DirtSpec)
    site_dirt: dict[str, DirtSpec] = field(default_factory=dict)
    drift_site: str = ""
    run_options: dict[str, Any] = field(default_factory=dict)
    ray_address: str = ""
    sites_dir: str = ""
    poisoned_sites: tuple[str, ...] = ()
    poison_factor: float = 100.0
    labeling: LabelingSpec = field(default_factory=LabelingSpec)
    reproducible: bool = False

    @staticmethod
    def default(name: str) -> Any:
        """The default of field ``name``: the CLIs' option defaults come from here."""
        return SimulationSpec.__dataclass_fields__[name].default

    def __post_init__(self) -> None:
        natural = self.partition.partition(":")[0] == "natural"
        if self.sites < (0 if natural else 1):
            raise ConfigError(f"--sites must be >= 1, got {self.sites}")
        if self.rounds < 1:
            raise ConfigError(f"--rounds must be >= 1, got {self.rounds}")
        if self.epsilon is not None and not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ConfigError(f"--epsilon must be > 0 or 'none', got {self.epsilon}")
        if self.partition.partition(":")[0] not in PARTITIONS or self.partition.startswith(
            tuple(f"{p}:" for p in PARTITIONS if p != "natural")
        ):
            raise ConfigError(
                f"--partition must be one of {', '.join(PARTITIONS)} or natural:COLUMN, "
                f"got '{self.partition}'"
            )
        if self.alpha <= 0:
            raise ConfigError(f"--alpha must be > 0, got {self.alpha}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test fraction must be in (0, 1), got {self.test_fraction}")
