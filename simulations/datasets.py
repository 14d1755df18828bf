"""Datasets that load offline, with the public ranges their documentation gives."""

from __future__ import annotations

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
    frame : features and label, one row per example.
    label : the label column.
    ranges : public (min, max) of each feature, from the dataset's documentation.
    scales : features best scaled logarithmically ('log'); the rest are linear.
    categories : categorical features and their allowed values.
    sensitive : columns with role ``sensitive`` (not model inputs) and their values.
    """

    name: str
    frame: pl.DataFrame
    label: str
    ranges: dict[str, tuple[float, float]]
    scales: dict[str, str] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    sensitive: dict[str, list[str]] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return list(self.ranges)


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
    return Dataset("breast_cancer", frame, "diagnosis", ranges, {n: SCALE for n in names})


SCALE = "log"


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
    """Handwritten digits, bundled with scikit-learn (1797 rows, 8x8 pixels, 10 classes).

    Every pixel is a count of 0 to 16 (its documented, public range).
    """
    bunch = sk.load_digits()
    names = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
    frame = pl.DataFrame(bunch.data, schema=names).with_columns(
        digit=pl.Series(bunch.target, dtype=pl.Int64)
    )
    return Dataset("digits", frame, "digit", {n: (0.0, 16.0) for n in names})


DATASETS = {"breast_cancer": breast_cancer, "digits": digits, "synthetic_groups": synthetic_groups}


def load_dataset(name: str) -> Dataset:
    key = name.replace("-", "_")
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset '{name}'; expected one of {sorted(DATASETS)}")
    return DATASETS[key]()
