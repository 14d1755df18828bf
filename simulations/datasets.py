"""Datasets that load offline, with the public ranges their documentation gives."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """

    name: str
    frame: pl.DataFrame
    label: str
    ranges: dict[str, tuple[float, float]]
    scales: dict[str, str] = field(default_factory=dict)

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
DATASETS = {"breast_cancer": breast_cancer}


def load_dataset(name: str) -> Dataset:
    key = name.replace("-", "_")
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset '{name}'; expected one of {sorted(DATASETS)}")
    return DATASETS[key]()
