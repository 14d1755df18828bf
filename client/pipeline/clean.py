"""Clean typed rows: dedupe, set unlabeled rows aside, impute, tame outliers.

All steps are polars expressions; the report holds counts, never row values. Every
clean row carries a stable row id (``_row_id``, :mod:`client.pipeline.dedupe`) that
labels refer to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import polars as pl

from client.pipeline.dedupe import dedupe, with_row_ids
from client.pipeline.ingest import LINE, SOURCE
from client.pipeline.medians import medians
from common.config import (
    CleaningSection,
    ColumnType,
    Role,
    SchemaSection,
    SiteConfig,
    missing_indicator_name,
)

NUMERIC = {ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL}
F = TypeVar("F", pl.DataFrame, pl.LazyFrame)


@dataclass
class CleaningReport:
    """What the pipeline did, in counts (never row values)."""

    rows_read: int = 0
    rows_valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates_dropped: int = 0
    unlabeled_dropped: int = 0
    incomplete_dropped: int = 0
    imputed: dict[str, int] = field(default_factory=dict)
    clipped: dict[str, int] = field(default_factory=dict)
    rows_clean: int = 0

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_valid


def numeric_features(schema: SchemaSection) -> list[str]:
    return [n for n in schema.features if schema.columns[n].type in NUMERIC]


def clean(
    frame: pl.DataFrame, config: SiteConfig, *, keep_unlabeled: bool = False
) -> tuple[pl.DataFrame, CleaningReport]:
    """Dedupe, set unlabeled rows aside, impute and tame outliers; report the counts.

    Parameters
    ----------
    frame : typed valid rows (with ``_source``/``_line`` when read from files).
    config : the site's config.
    keep_unlabeled : keep the rows without a label in the result (cleaned with the
        others) instead of dropping them; ``unlabeled_dropped`` counts them either way.
    """
    report = CleaningReport(rows_read=frame.height, rows_valid=frame.height)
    identified = _identified(frame, config, report)
    if not keep_unlabeled:
        identified = identified.filter(pl.col(config.schema.label).is_not_null())
    return _finish(identified, config, report), report


def clean_with_unlabeled(
    frame: pl.DataFrame, config: SiteConfig, *, consume: bool = False
) -> tuple[pl.DataFrame, CleaningReport, pl.DataFrame]:
    """``clean(frame, config)`` and the unlabeled rows cleaned alongside all rows.

    The same as ``clean`` twice (without and with ``keep_unlabeled``, the second
    filtered to the unlabeled rows), but dedupe and row ids, the costly steps, run once:
    both passes start from the same deduped rows, in the same order.

    Parameters
    ----------
    frame : typed valid rows (with ``_source``/``_line`` when read from files).
    config : the site's config.
    consume : drop ``frame``'s columns in place once its rows are deduped, so its
        memory is freed before the cleaning copies are made (peak memory); the caller
        must not use ``frame`` afterwards.
    """
    report = CleaningReport(rows_read=frame.height, rows_valid=frame.height)
    identified = _identified(frame, config, report)
    if consume:
        for name in frame.columns:
            frame.drop_in_place(name)
    label = pl.col(config.schema.label)
    labeled = identified.filter(label.is_not_null())
    if report.unlabeled_dropped == 0:
        unlabeled = _finish(identified.head(0), config, CleaningReport())
    elif config.cleaning.impute == "interpolate":  # along each subject's series, all rows
        unlabeled = _finish(identified, config, CleaningReport()).filter(label.is_null())
    else:
        # Cleaned with the statistics of all rows, as if cleaned among them, but only
        # the unlabeled rows are transformed: no second copy of the whole table.
        unlabeled = identified.filter(label.is_null())
        unlabeled = _finish(unlabeled, config, CleaningReport(), statistics_from=identified)
    del identified
    cleaned = _finish(labeled, config, report)
    return cleaned, report, unlabeled


def _identified(frame: pl.DataFrame, config: SiteConfig, report: CleaningReport) -> pl.DataFrame:
    """Deduped rows with their row ids, provenance dropped; counts unlabeled rows."""
    schema = config.schema
    frame, report.duplicates_dropped = dedupe(frame, schema, config.cleaning)
    frame = with_row_ids(frame, schema).drop([c for c in (SOURCE, LINE) if c in frame.columns])
    report.unlabeled_dropped = int(frame.get_column(schema.label).null_count())
    return frame


def _finish(
    frame: pl.DataFrame,
    config: SiteConfig,
    report: CleaningReport,
    *,
    statistics_from: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Missing indicators, outliers and imputation; report the counts.

    Parameters
    ----------
    frame : the rows to clean.
    config : the site's config.
    report : receives the counts of ``frame``'s rows clipped, imputed and dropped.
    statistics_from : the rows whose quantiles, medians, means or modes are used
        (default ``frame``); not with ``impute = "interpolate"``.
    """
    schema, cleaning = config.schema, config.cleaning
    features = numeric_features(schema)
    dtypes = frame.schema  # interpolated ints are rounded back: a column keeps its type
    source = frame if statistics_from is None else statistics_from
    bounds = _bounds(source, schema, cleaning, features)
    clipped = {c: pl.col(c).clip(lo, hi) for c, (lo, hi) in bounds.items()}
    if cleaning.impute != "interpolate":
        fills = _fill_values(source, cleaning, features, clipped)
    # One pass for the counts, one for the rows.
    counts = _count(
        frame,
        [
            *(_outside(c, lo, hi).sum().alias(f"clipped:{c}") for c, (lo, hi) in bounds.items()),
            *(pl.col(c).null_count().alias(f"null:{c}") for c in features),
        ],
    )
    report.clipped = {c: counts[f"clipped:{c}"] for c in bounds if counts.get(f"clipped:{c}")}
    indicators = _missing_indicators(schema, features)
    if cleaning.impute == "interpolate":  # then the median of the interpolated series
        frame = frame.with_columns(*indicators, *(e.alias(c) for c, e in clipped.items()))
        frame = _interpolate(frame, schema, features)
        fills = _fill_values(frame, cleaning, features, {})
        clipped, indicators = {}, []
    before = frame.height
    frame = finishing(frame, features, indicators, clipped, fills, dtypes, drop=cleaning.impute)
    report.incomplete_dropped = before - frame.height
    report.imputed = imputed_counts(cleaning, features, fills, counts)
    report.rows_clean = frame.height
    return frame


def finishing(
    frame: F,
    features: list[str],
    indicators: list[pl.Expr],
    clipped: dict[str, pl.Expr],
    fills: dict[str, object] | None,
    dtypes: pl.Schema,
    *,
    drop: str,
) -> F:
    """``frame`` with missing indicators, clipped and filled (the rows ``_finish`` keeps).

    Parameters
    ----------
    frame : the rows to clean (eager or lazy).
    features : the numeric features.
    indicators : the missing-indicator columns to add.
    clipped : each clipped column's clipping expression.
    fills : each feature's fill value (None: nothing fills here).
    dtypes : ``frame``'s column types (an int column stays int).
    drop : the ``impute`` setting: ``"drop"`` drops the rows missing a feature.
    """
    if drop == "drop":
        frame = frame.with_columns(*indicators, *(e.alias(c) for c, e in clipped.items()))
        return frame.drop_nulls(features)
    if fills is None:
        return frame.with_columns(*indicators, *(e.alias(c) for c, e in clipped.items()))
    # Clipped and filled in one expression per column: no clipped copy in between.
    return frame.with_columns(
        *indicators,
        *(
            _as_type(clipped.get(c, pl.col(c)).fill_null(pl.lit(v)), dtypes[c]).alias(c)
            for c, v in fills.items()
        ),
        *(e.alias(c) for c, e in clipped.items() if c not in fills),
    )


def imputed_counts(
    cleaning: CleaningSection,
    features: list[str],
    fills: dict[str, object] | None,
    counts: dict[str, int],
) -> dict[str, int]:
    """Each feature's count of values imputed, from its ``null:<name>`` count."""
    if cleaning.impute == "drop":
        return {}
    if fills is None:
        # 'center' fills at training, from the federation: what stays missing here is
        # what it will fill.
        return {c: counts[f"null:{c}"] for c in features if counts.get(f"null:{c}")}
    # Counted as filled, not as seen missing: an all-null column stays null.
    return {
        c: counts[f"null:{c}"]
        for c, v in fills.items()
        if v is not None and counts.get(f"null:{c}")
    }


def _bounds(
    source: pl.DataFrame, schema: SchemaSection, cleaning: CleaningSection, features: list[str]
) -> dict[str, tuple[object, object]]:
    """Each clipped column's (low, high): declared, or ``source``'s winsorizing quantiles."""
    if cleaning.outliers in ("none", "reject"):
        return {}  # 'reject' already sent them to quarantine
    measured = [c for c in features if schema.columns[c].type is not ColumnType.BOOL]
    if cleaning.outliers == "winsorize":
        low, high = cleaning.winsorize_quantiles
        if not measured:
            return {}
        row = source.select(
            *(pl.col(c).quantile(low).alias(f"lo:{c}") for c in measured),
            *(pl.col(c).quantile(high).alias(f"hi:{c}") for c in measured),
        ).row(0, named=True)
        return {c: (row[f"lo:{c}"], row[f"hi:{c}"]) for c in measured}
    return {
        c: (schema.columns[c].min, schema.columns[c].max)
        for c in measured
        if schema.columns[c].min is not None or schema.columns[c].max is not None
    }


def _fill_values(
    source: pl.DataFrame,
    cleaning: CleaningSection,
    features: list[str],
    clipped: dict[str, pl.Expr],
) -> dict[str, object] | None:
    """Each feature's fill value, from ``source`` after clipping; None: nothing fills here."""
    if cleaning.impute in ("center", "drop"):  # center: at training, the federation's
        return None
    if cleaning.impute == "constant":
        return {c: cleaning.impute_value for c in features}
    if not features:
        return {}
    values = clipped.get
    if cleaning.impute in ("median", "interpolate"):
        # Clipped after selection: a clipped column's middle values are its middle
        # values clipped (no clipped copy of each column).
        return medians(source, {c: pl.col(c) for c in features}, then=clipped)
    statistic = {
        "mean": lambda e: e.mean(),
        # The most frequent present value, the smallest on a tie (``mode`` alone comes
        # in no set order, and counts null as a value).
        "mode": lambda e: e.drop_nulls().mode().sort().first(),
    }[cleaning.impute]
    row = source.select(statistic(values(c, pl.col(c))).alias(c) for c in features).row(
        0, named=True
    )
    return dict(row)


def missing_fractions(frame: pl.DataFrame, columns: list[str]) -> dict[str, float]:
    """Share of nulls per column (before imputation hides them)."""
    if frame.height == 0 or not columns:
        return {}
    row = frame.select(pl.col(c).is_null().mean().alias(c) for c in columns).row(0, named=True)
    return {c: float(v) for c, v in row.items()}


def _missing_indicators(schema: SchemaSection, features: list[str]) -> list[pl.Expr]:
    return [
        pl.col(c).is_null().cast(pl.Int8).alias(missing_indicator_name(c))
        for c in features
        if schema.columns[c].missing_indicator
    ]


def _outside(column: str, low, high) -> pl.Expr:
    value = pl.col(column)
    below = value < low if low is not None else pl.lit(False)
    above = value > high if high is not None else pl.lit(False)
    return below | above


def _as_type(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return value.round().cast(dtype) if dtype.is_integer() else value.cast(dtype)


def _interpolate(frame: pl.DataFrame, schema: SchemaSection, features: list[str]) -> pl.DataFrame:
    """Linear interpolation in time order within each id (the time series of one subject)."""
    timestamp, id_column = schema.first_with(Role.TIMESTAMP), schema.first_with(Role.ID)
    if timestamp is None:
        return frame
    ordered = frame.with_row_index("_order").sort(timestamp)
    interpolated = [pl.col(c).interpolate() for c in features]
    if id_column is not None:
        interpolated = [e.over(id_column) for e in interpolated]
    return ordered.with_columns(interpolated).sort("_order").drop("_order")


def _count(frame: pl.DataFrame, expressions: list[pl.Expr]) -> dict[str, int]:
    if not expressions or frame.height == 0:
        return {}
    counts = frame.select(expressions).row(0, named=True)
    return {name: int(n) for name, n in counts.items() if n}
