"""Realistic dirt for virtual sites' raw files: duplicates, gaps, outliers."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from common.errors import ConfigError


@dataclass(frozen=True)
class DirtSpec:
    """How dirty a site's raw file is.

    Parameters
    ----------
    duplicates : fraction of rows written twice.
    missing : fraction of feature cells left empty (missing completely at random).
    outliers : fraction of rows with one feature multiplied by ``outlier_factor``.
    outlier_factor : how far out an outlier lies.
    """

    duplicates: float = 0.05
    missing: float = 0.03
    outliers: float = 0.02
    outlier_factor: float = 10.0

    def __post_init__(self) -> None:
        for name in ("duplicates", "missing", "outliers"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"dirt {name} must be in [0, 1), got {getattr(self, name)}")


def inject(
    frame: pl.DataFrame, features: list[str], spec: DirtSpec, rng: np.random.Generator
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Return a dirty copy of ``frame`` and how much of each dirt went in."""
    values = frame.select(features).to_numpy().astype(float)
    rows = rng.random(len(values)) < spec.outliers
    columns = rng.integers(0, len(features), size=len(values))
    values[rows, columns[rows]] *= spec.outlier_factor
    gaps = rng.random(values.shape) < spec.missing
    values[gaps] = np.nan
    dirty = frame.with_columns(
        pl.Series(name, values[:, i]).fill_nan(None) for i, name in enumerate(features)
    )
    copies = rng.choice(len(frame), size=int(round(spec.duplicates * len(frame))), replace=False)
    dirty = pl.concat([dirty, dirty[copies.tolist()]])
    dirty = dirty[rng.permutation(dirty.height).tolist()]
    injected = {"duplicates": len(copies), "missing": int(gaps.sum()), "outliers": int(rows.sum())}
    return dirty, injected


def describe(spec: DirtSpec) -> dict[str, float]:
    return asdict(spec)
