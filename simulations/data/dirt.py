"""Realistic dirt for virtual sites' raw files.

Duplicates, gaps (completely at random, or concentrated in named columns), outliers,
noisy and hidden labels. Schema drift (a site that renamed a column) is a per-run
choice of ``SimulationSpec.drift_site``, applied when its site is written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import polars as pl

from common.errors import ConfigError

_FRACTIONS = ("duplicates", "missing", "outliers", "label_noise", "hidden_labels")


@dataclass(frozen=True)
class DirtSpec:
    """How dirty a site's raw file is.

    Parameters
    ----------
    duplicates : fraction of rows written twice.
    missing : fraction of feature cells left empty (missing completely at random).
    outliers : fraction of rows with one feature multiplied by ``outlier_factor``.
    outlier_factor : how far out an outlier lies.
    label_noise : fraction of rows whose label is swapped for another class.
    hidden_labels : fraction of rows whose label is left empty (not yet labelled).
    missing_by_column : column -> fraction of its cells left empty (a sensor that
        fails, a field one clinic never fills).
    """

    duplicates: float = 0.05
    missing: float = 0.03
    outliers: float = 0.02
    outlier_factor: float = 10.0
    label_noise: float = 0.0
    hidden_labels: float = 0.0
    missing_by_column: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shares = [(n, getattr(self, n)) for n in _FRACTIONS]
        shares += [(f"missing.{c}", v) for c, v in self.missing_by_column.items()]
        for name, value in shares:
            if not 0 <= value < 1:
                raise ConfigError(f"dirt {name} must be in [0, 1), got {value}")
        if self.outlier_factor <= 0:
            raise ConfigError(f"dirt outlier_factor must be > 0, got {self.outlier_factor}")

    def updated(self, text: str) -> DirtSpec:
        """This spec with ``key=value,...`` applied, e.g. ``label_noise=0.1,missing.age=0.3``."""
        changes: dict[str, object] = {}
        by_column = dict(self.missing_by_column)
        known = {f.name for f in fields(self)} - {"missing_by_column"}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip()
            try:
                number = float(value)
            except ValueError:
                number = None
            if not sep or number is None:
                raise ConfigError(f"dirt setting '{item}' must be KEY=NUMBER")
            if key.startswith("missing."):
                by_column[key.removeprefix("missing.")] = number
            elif key in known:
                changes[key] = number
            else:
                raise ConfigError(
                    f"unknown dirt '{key}'; expected {sorted(known)} or missing.COLUMN"
                )
        # Every known dirt field is a float and every value was parsed as one above.
        return replace(self, **changes, missing_by_column=by_column)  # type: ignore[arg-type]


def inject(
    frame: pl.DataFrame,
    features: list[str],
    spec: DirtSpec,
    rng: np.random.Generator,
    label: str | None = None,
    classes: list | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Return a dirty copy of ``frame`` and how much of each dirt went in.

    Parameters
    ----------
    frame : the site's clean rows.
    features : numeric feature columns (outliers and gaps go there).
    spec : what to inject.
    rng : draws every choice; the same seed gives the same dirt.
    label, classes : the label column and the federation's classes, for label noise
        and hidden labels (no label dirt without them).
    """
    values = frame.select(features).to_numpy().astype(float)
    rows = rng.random(len(values)) < spec.outliers
    columns = rng.integers(0, len(features), size=len(values))
    values[rows, columns[rows]] *= spec.outlier_factor
    gaps = rng.random(values.shape) < spec.missing
    values[gaps] = np.nan
    column_gaps = 0
    for column, share in sorted(spec.missing_by_column.items()):
        if column not in features:
            raise ConfigError(f"dirt missing.{column}: no numeric feature '{column}'")
        blank = (rng.random(len(values)) < share) & ~gaps[:, features.index(column)]
        values[blank, features.index(column)] = np.nan
        column_gaps += int(blank.sum())
    dirty = frame.with_columns(
        pl.Series(name, values[:, i]).fill_nan(None) for i, name in enumerate(features)
    )
    injected = {"outliers": int(rows.sum()), "missing": int(gaps.sum())}
    if spec.missing_by_column:
        injected["missing_by_column"] = column_gaps
    if label is not None and (spec.label_noise or spec.hidden_labels):
        dirty, label_counts = _dirty_labels(dirty, label, list(classes or []), spec, rng)
        injected |= label_counts
    copies = rng.choice(len(frame), size=int(round(spec.duplicates * len(frame))), replace=False)
    dirty = pl.concat([dirty, dirty[copies.tolist()]])
    dirty = dirty[rng.permutation(dirty.height).tolist()]
    return dirty, {"duplicates": len(copies), **injected}


def _dirty_labels(
    frame: pl.DataFrame, label: str, classes: list, spec: DirtSpec, rng: np.random.Generator
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Swap ``label_noise`` of the labels for another class; blank ``hidden_labels``."""
    labels = frame[label].to_numpy().copy()
    noisy = rng.random(len(labels)) < spec.label_noise
    if len(classes) < 2:
        noisy[:] = False
    # A shift of 1..k-1 places along the class list always lands on another class.
    table = np.array(classes, dtype=labels.dtype)
    position = np.searchsorted(table, labels[noisy], sorter=np.argsort(table))
    position = np.argsort(table)[position]
    shift = rng.integers(1, len(classes), size=int(noisy.sum())) if len(classes) > 1 else 0
    labels[noisy] = table[(position + shift) % len(classes)]
    hidden = rng.random(len(labels)) < spec.hidden_labels
    series = pl.Series(label, labels, dtype=frame[label].dtype)
    series = pl.select(pl.when(pl.lit(pl.Series(hidden))).then(None).otherwise(series)).to_series()
    counts = {"label_noise": int(noisy.sum()), "hidden_labels": int(hidden.sum())}
    return frame.with_columns(series.alias(label)), counts


def describe(spec: DirtSpec) -> dict[str, object]:
    return asdict(spec)
