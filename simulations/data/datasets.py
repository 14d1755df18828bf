"""Datasets that load offline, with the public ranges their documentation gives.

``load_dataset`` understands the bundled names (``breast_cancer``, ``digits``), the
``heart_disease`` preset (read in place from ``../shared`` when it is there), and
``csv:PATH`` / ``dir:PATH`` for a researcher's own tables (``simulations.data.tables``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from common.errors import ConfigError
from simulations.data.dataset import Dataset
from simulations.data.heart_disease import heart_disease
from simulations.data.tables import load_folder, load_table


def breast_cancer() -> Dataset:
    """Wisconsin diagnostic breast cancer, bundled with scikit-learn (569 rows, 30 features).

    Its DESCR publishes each feature's min and max; those are the public ranges.
    """
    from sklearn.datasets import load_breast_cancer  # scikit-learn takes a second to import

    bunch = load_breast_cancer()
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
    from sklearn.datasets import load_digits

    bunch = load_digits()
    names = [f"px_{i // 8}_{i % 8}" for i in range(bunch.data.shape[1])]
    frame = pl.DataFrame(bunch.data, schema=names).with_columns(
        digit=pl.Series(bunch.target, dtype=pl.Int64)
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
