"""Datasets that load offline, with the public ranges their documentation gives.

``load_dataset`` understands the bundled names (``breast_cancer``, ``digits``), the
``heart_disease`` preset (read in place from ``../shared`` when it is there), and
``csv:PATH`` / ``dir:PATH`` for a researcher's own tables (``simulations.tables``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sklearn import datasets as sk

from common.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """A labelled table and its public metadata.

    Parameters
    ----------
    name : the dataset's name.
    frame : features and label, one row per example (other columns may ride along,
        e.g. the one a natural partition splits by; sites never receive them).
    label : the label column.
    ranges : public (min, max) of each numeric feature, from the dataset's documentation.
    scales : features best scaled logarithmically ('log'); the rest are linear.
    categories : category features and their declared values.
    model : the architecture of ``common.models`` that suits the data.
    natural : the column a ``natural`` partition splits by when none is named
        (e.g. each row's source file or hospital); None = no natural split.
    run_defaults : run-config keys that suit the data (e.g. a CNN's learning rate);
        the simulation's own options override them.
    sensitive : columns with role ``sensitive`` (not model inputs) and their values.
    """

    name: str
    frame: pl.DataFrame
    label: str
    ranges: dict[str, tuple[float, float]]
    scales: dict[str, str] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    model: str = "logreg"
    natural: str | None = None
    run_defaults: dict[str, float] = field(default_factory=dict)
    sensitive: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label not in self.frame.columns:
            raise ConfigError(f"dataset '{self.name}': no label column '{self.label}'")
        if self.frame[self.label].drop_nulls().n_unique() < 2:
            raise ConfigError(f"dataset '{self.name}': label '{self.label}' has < 2 classes")
        if not self.ranges and not self.categories:
            raise ConfigError(f"dataset '{self.name}': no numeric or category feature")

    @property
    def features(self) -> list[str]:
        """The numeric features (the ones dirt can shift or blank)."""
        return list(self.ranges)

    @property
    def site_columns(self) -> list[str]:
        """What a site's raw file holds: features, sensitive columns and the label."""
        return [*self.ranges, *self.categories, *self.sensitive, self.label]

    def renamed(self, old: str, new: str) -> Dataset:
        """This dataset with feature ``old`` called ``new`` (schema drift at a site)."""
        rename = {old: new}
        return Dataset(
            self.name,
            self.frame.rename(rename),
            self.label,
            {rename.get(n, n): r for n, r in self.ranges.items()},
            {rename.get(n, n): s for n, s in self.scales.items()},
            {rename.get(n, n): v for n, v in self.categories.items()},
            self.model,
            self.natural,
            self.run_defaults,
            self.sensitive,
        )


def breast_cancer() -> Dataset:
    """Wisconsin diagnostic breast cancer, bundled with scikit-learn (569 rows, 30 features).

    Its DESCR publishes each feature's min and max; those are the public ranges.
    """
    bunch = sk.load_breast_cancer()
    names = [n.replace(" ", "_") for n in bunch.feature_names]
    frame = pl.DataFrame(bunch.data, schema=names).with_columns(
        diagnosis=pl.Series(bunch.target, dtype=pl.Int64)
    )
    ranges = {n: (float(frame[n].min()), float(frame[n].max())) for n in names}
    # All 30 are positive measurements (sizes, areas, counts of concave points)
    # with long right tails: a log scale keeps the tail from squeezing the bulk.
    return Dataset("breast_cancer", frame, "diagnosis", ranges, {n: "log" for n in names})


def synthetic_groups(rows: int = 4000, disparity: float = 1.0, seed: int = 0) -> Dataset:
    """A generated table with a sensitive column ``group`` (a/b) and a planted disparity.

    Twelve numeric features (public range [-4, 4]), a categorical ``region`` and a
    binary label from a logistic model of them. In group ``b`` the feature ``x0``,
    which drives the label, is shifted by ``disparity``: with ``disparity = 0`` the
    groups are exchangeable, otherwise the model selects group ``b`` more often.
    """
    rng = np.random.default_rng(seed)
    group = rng.random(rows) < 0.5
    x = rng.normal(size=(rows, 12))
    x[:, 0] += disparity * group
    region = rng.integers(0, 3, size=rows)
    logits = 2.0 * x[:, 0] + x[:, 1] - 0.8 * x[:, 2] + 0.5 * (region == 2) - 0.3
    label = (rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(np.int64)
    names = [f"x{i}" for i in range(12)]
    frame = pl.DataFrame(np.clip(x, -4, 4), schema=names).with_columns(
        region=pl.Series(np.array(["north", "south", "east"])[region]),
        group=pl.Series(np.where(group, "b", "a")),
        outcome=pl.Series(label),
    )
    return Dataset(
        "synthetic_groups",
        frame,
        "outcome",
        {n: (-4.0, 4.0) for n in names},
        categories={"region": ["north", "south", "east"]},
        sensitive={"group": ["a", "b"]},
    )


def digits() -> Dataset:
    """scikit-learn's 8x8 hand-written digits (1797 images, 10 classes), for the small CNN.

    Each pixel counts the set bits of a 4x4 block: 0 to 16 by construction.
    """
    bunch = sk.load_digits()
    names = [f"px_{i // 8}_{i % 8}" for i in range(bunch.data.shape[1])]
    frame = pl.DataFrame(bunch.data, schema=names).with_columns(
        digit=pl.Series(bunch.target, dtype=pl.Int64)
    )
    ranges = dict.fromkeys(names, (0.0, 16.0))
    # The convolutions diverge at the tabular default step; 0.2 trains in a few rounds.
    return Dataset(
        "digits", frame, "digit", ranges, model="cnn", run_defaults={"learning_rate": 0.2}
    )


def _heart_disease() -> Dataset:
    from simulations.heart_disease import heart_disease  # reads ../shared: only on demand

    return heart_disease()


BUNDLED: dict[str, Callable[[], Dataset]] = {
    "breast_cancer": breast_cancer,
    "digits": digits,
    "heart_disease": _heart_disease,
    "synthetic_groups": synthetic_groups,
}
PREFIXES = ("csv:", "dir:")


def load_dataset(name: str, label: str = "") -> Dataset:
    """The dataset ``name`` names; ``label`` picks the label of a ``csv:``/``dir:`` table.

    Parameters
    ----------
    name : a bundled name, ``csv:PATH`` (a CSV or Parquet file) or ``dir:PATH`` (a
        folder of per-site files: a natural split by file).
    label : label column of a researcher's table ('' = guess it from the names).
    """
    if name.startswith(PREFIXES):
        from simulations.tables import load_folder, load_table

        kind, _, path = name.partition(":")
        return load_table(path, label) if kind == "csv" else load_folder(path, label)
    key = name.replace("-", "_")
    if key not in BUNDLED:
        raise ConfigError(
            f"unknown dataset '{name}'; expected one of {sorted(BUNDLED)}, csv:PATH or dir:PATH"
        )
    return BUNDLED[key]()
