"""Datasets that load offline, with the public ranges their documentation gives.

``load_dataset`` understands the bundled names (``breast_cancer``, ``digits``), the
``heart_disease`` preset (read in place from ``../shared`` when it is there), and
``csv:PATH`` / ``dir:PATH`` for a researcher's own tables (``simulations.data.tables``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from common.errors import ConfigError
from common.package_files import package_file
from simulations.data.dataset import Dataset
from simulations.data.heart_disease import heart_disease
from simulations.data.tables import load_folder, load_table

# The breast-cancer features: each of ten measurements as a mean, a standard error and
# a worst value, in the order (and with the names) scikit-learn's loader gives them.
_MEASUREMENTS = (
    "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
    "concave points", "symmetry", "fractal dimension",
)  # fmt: skip
BREAST_CANCER_FEATURES = (
    *(f"mean {m}" for m in _MEASUREMENTS),
    *(f"{m} error" for m in _MEASUREMENTS),
    *(f"worst {m}" for m in _MEASUREMENTS),
)


def sklearn_data_file(name: str) -> Path:
    """A data file bundled with scikit-learn, found without importing it.

    Importing scikit-learn takes seconds on a small machine, and every simulation (and
    every ``fedlife-sim`` call that checks its options against the data) would pay that
    for a CSV file of a few hundred rows; ``load_breast_cancer`` and ``load_digits``
    read these very files.
    """
    path = package_file("sklearn", "datasets", "data", name)
    if path is None:
        raise ConfigError(
            f"the bundled datasets need scikit-learn's {name}: pip install scikit-learn"
        )
    return path


def breast_cancer() -> Dataset:
    """Wisconsin diagnostic breast cancer, bundled with scikit-learn (569 rows, 30 features).

    Its DESCR publishes each feature's min and max; those are the public ranges.
    """
    # The first line is a header of counts and class names: 569,30,malignant,benign.
    table = np.loadtxt(sklearn_data_file("breast_cancer.csv"), delimiter=",", skiprows=1)
    names = [n.replace(" ", "_") for n in BREAST_CANCER_FEATURES]
    frame = pl.DataFrame(table[:, :-1], schema=names).with_columns(
        diagnosis=pl.Series(table[:, -1].astype(np.int64))
    )
    low, high = table[:, :-1].min(axis=0), table[:, :-1].max(axis=0)
    ranges = {n: (float(lo), float(hi)) for n, lo, hi in zip(names, low, high, strict=True)}
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
    table = np.loadtxt(sklearn_data_file("digits.csv.gz"), delimiter=",")  # 64 pixels, digit
    names = [f"px_{i // 8}_{i % 8}" for i in range(table.shape[1] - 1)]
    frame = pl.DataFrame(table[:, :-1], schema=names).with_columns(
        digit=pl.Series(table[:, -1].astype(np.int64))
    )
    ranges = dict.fromkeys(names, (0.0, 16.0))
    # The convolutions diverge at the tabular default step; 0.2 trains in a few rounds.
    return Dataset(
        "digits", frame, "digit", ranges, model="cnn", run_defaults={"learning_rate": 0.2}
    )


BUNDLED: dict[str, Callable[[], Dataset]] = {
    "breast_cancer": breast_cancer,
    "digits": digits,
    "heart_disease": heart_disease,
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
        kind, _, path = name.partition(":")
        return load_table(path, label) if kind == "csv" else load_folder(path, label)
    key = name.replace("-", "_")
    if key not in BUNDLED:
        raise ConfigError(
            f"unknown dataset '{name}'; expected one of {sorted(BUNDLED)}, csv:PATH or dir:PATH"
        )
    return BUNDLED[key]()
