"""Drift of served records against the federation's training histograms.

Served records are binned with :func:`common.histograms.histogram_columns`, the
same bins the sites' released histograms use, and compared with
:func:`common.histograms.psi`.
"""

from __future__ import annotations

import polars as pl

from common.features import FeatureSpec
from common.histograms import histogram_columns, psi
from common.stats import CategoryStats
from server.serving.records import raw_columns


def served_histograms(spec: FeatureSpec, records: list[dict]) -> dict[str, CategoryStats]:
    """Histograms of checked raw records (see ``check_records``), per input column."""
    numeric, categories = raw_columns(spec)
    schema = {c: pl.Float64 for c in numeric} | {c: pl.String for c in categories}
    frame = pl.DataFrame(records, schema=schema, orient="row").with_columns(
        pl.lit(None, dtype=pl.String).alias(spec.label)
    )
    binned = frame.select(histogram_columns(spec)).drop(spec.label)
    histograms = {}
    for column in binned.columns:
        values = binned.get_column(column)
        counts = values.drop_nulls().value_counts()
        histograms[column] = CategoryStats(
            {str(k): int(n) for k, n in counts.iter_rows()}, int(values.null_count())
        )
    return histograms


def served_drift(
    reference: dict[str, CategoryStats], served: dict[str, CategoryStats]
) -> dict[str, float | None]:
    """PSI per column of ``served`` against ``reference`` (None where either is empty)."""
    return {c: psi(reference[c], h) if c in reference else None for c, h in served.items()}
