"""Clean typed rows: dedupe, set unlabeled rows aside, impute, tame outliers.

All steps are polars expressions; the report holds counts, never row values. Every
clean row carries a stable row id (``_row_id``) that labels refer to:

* the schema's id column, where it has one; a value that repeats gets ``#2``,
  ``#3``... in the order rows were read (files by name, then line);
* otherwise (or where the id is missing) ``<file>:<line>`` of the row's first
  occurrence in the raw files.

Re-running on the same files gives the same ids; appending rows keeps old ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from client.pipeline.ingest import LINE, SOURCE
from client.store import ROW_ID
from common.config import (
    CleaningSection,
    ColumnType,
    Role,
    SchemaSection,
    SiteConfig,
    missing_indicator_name,
)

NUMERIC = {ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL}


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
    frame: pl.DataFrame, config: SiteConfig, keep_unlabeled: bool = False
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
    frame: pl.DataFrame, config: SiteConfig
) -> tuple[pl.DataFrame, CleaningReport, pl.DataFrame]:
    """``clean(frame, config)`` and the unlabeled rows cleaned alongside all rows.

    The same as ``clean`` twice (without and with ``keep_unlabeled``, the second
    filtered to the unlabeled rows), but dedupe and row ids, the costly steps, run once:
    both passes start from the same deduped rows, in the same order.

    Parameters
    ----------
    frame : typed valid rows (with ``_source``/``_line`` when read from files).
    config : the site's config.
    """
    report = CleaningReport(rows_read=frame.height, rows_valid=frame.height)
    identified = _identified(frame, config, report)
    label = pl.col(config.schema.label)
    # The unlabeled rows first: the all-rows frame they come from is freed before the
    # clean one is made, so the two never coexist (peak memory).
    if report.unlabeled_dropped == 0:
        unlabeled = _finish(identified.head(0), config, CleaningReport())
    else:
        unlabeled = _finish(identified, config, CleaningReport()).filter(label.is_null())
    cleaned = _finish(identified.filter(label.is_not_null()), config, report)
    return cleaned, report, unlabeled


def _identified(frame: pl.DataFrame, config: SiteConfig, report: CleaningReport) -> pl.DataFrame:
    """Deduped rows with their row ids, provenance dropped; counts unlabeled rows."""
    schema = config.schema
    frame, report.duplicates_dropped = _dedupe(frame, schema, config.cleaning)
    frame = with_row_ids(frame, schema).drop([c for c in (SOURCE, LINE) if c in frame.columns])
    report.unlabeled_dropped = int(frame.get_column(schema.label).null_count())
    return frame


def _finish(frame: pl.DataFrame, config: SiteConfig, report: CleaningReport) -> pl.DataFrame:
    """Missing indicators, outliers and imputation over ``frame``'s own statistics."""
    schema, cleaning = config.schema, config.cleaning
    features = numeric_features(schema)
    frame = frame.with_columns(_missing_indicators(schema, features))
    frame, report.clipped = _tame_outliers(frame, schema, cleaning, features)
    if cleaning.impute == "drop":
        kept = frame.drop_nulls(features)
        report.incomplete_dropped = frame.height - kept.height
        frame = kept
    else:
        before = _nulls(frame, features)
        frame = _impute(frame, schema, cleaning, features)
        # 'center' fills at training, from the federation: what stays missing here is
        # what it will fill. Otherwise counted as filled, not as seen missing: an
        # all-null column stays null.
        after = {} if cleaning.impute == "center" else _nulls(frame, features)
        report.imputed = {c: n - after.get(c, 0) for c, n in before.items() if n > after.get(c, 0)}
    report.rows_clean = frame.height
    return frame


def with_row_ids(frame: pl.DataFrame, schema: SchemaSection) -> pl.DataFrame:
    """Add ``_row_id`` (see the module's docstring) to rows in read order."""
    if SOURCE in frame.columns and LINE in frame.columns:
        position = pl.concat_str(pl.col(SOURCE), pl.lit(":"), pl.col(LINE).cast(pl.String))
    else:
        position = pl.int_range(pl.len()).cast(pl.String)
    id_column = schema.first_with(Role.ID)
    if id_column is None:
        return frame.with_columns(position.alias(ROW_ID))
    value = pl.col(id_column).cast(pl.String)
    if frame.get_column(id_column).is_duplicated().any():
        # Grouped by the typed id (hashing ints is cheaper; the cast is one to one).
        occurrence = pl.int_range(pl.len()).over(id_column) + 1
        repeated = pl.concat_str(value, pl.lit("#"), occurrence.cast(pl.String))
        value = pl.when(occurrence == 1).then(value).otherwise(repeated)
    if frame.get_column(id_column).null_count() == 0:
        return frame.with_columns(value.alias(ROW_ID))  # no position strings to build
    return frame.with_columns(
        pl.when(pl.col(id_column).is_null()).then(position).otherwise(value).alias(ROW_ID)
    )


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


def _dedupe(
    frame: pl.DataFrame, schema: SchemaSection, cleaning: CleaningSection
) -> tuple[pl.DataFrame, int]:
    if cleaning.dedupe is False:
        return frame, 0
    # Provenance is not part of a row's content: the first occurrence is kept.
    content = [c for c in frame.columns if c not in (SOURCE, LINE)]
    deduped = frame.unique(subset=content, keep="first", maintain_order=True)
    id_column = schema.first_with(Role.ID)
    if cleaning.dedupe == "id" and id_column is not None:
        timestamp = schema.first_with(Role.TIMESTAMP)
        if timestamp is not None:
            deduped = deduped.sort(timestamp, nulls_last=False, maintain_order=True)
        deduped = deduped.unique(subset=[id_column], keep="last", maintain_order=True)
    return deduped, frame.height - deduped.height


def _tame_outliers(
    frame: pl.DataFrame, schema: SchemaSection, cleaning: CleaningSection, features: list[str]
) -> tuple[pl.DataFrame, dict[str, int]]:
    if cleaning.outliers in ("none", "reject"):
        return frame, {}  # 'reject' already sent them to quarantine
    measured = [c for c in features if schema.columns[c].type is not ColumnType.BOOL]
    if cleaning.outliers == "winsorize":
        low, high = cleaning.winsorize_quantiles
        bounds = {c: (pl.col(c).quantile(low), pl.col(c).quantile(high)) for c in measured}
    else:
        bounds = {
            c: (schema.columns[c].min, schema.columns[c].max)
            for c in measured
            if schema.columns[c].min is not None or schema.columns[c].max is not None
        }
    if not bounds:
        return frame, {}
    outside = [_outside(c, lo, hi).sum().alias(c) for c, (lo, hi) in bounds.items()]
    counts = _count(frame, outside)
    frame = frame.with_columns(pl.col(c).clip(lo, hi).alias(c) for c, (lo, hi) in bounds.items())
    return frame, counts


def _outside(column: str, low, high) -> pl.Expr:
    value = pl.col(column)
    below = value < low if low is not None else pl.lit(False)
    above = value > high if high is not None else pl.lit(False)
    return below | above


def _impute(
    frame: pl.DataFrame, schema: SchemaSection, cleaning: CleaningSection, features: list[str]
) -> pl.DataFrame:
    if cleaning.impute == "center":  # filled at training, with the federation's center
        return frame
    dtypes = {c: frame.schema[c] for c in features}
    if cleaning.impute == "interpolate":
        frame = _interpolate(frame, schema, features)
    fill = {
        "median": lambda c: pl.col(c).median(),
        "interpolate": lambda c: pl.col(c).median(),
        "mean": lambda c: pl.col(c).mean(),
        "mode": lambda c: pl.col(c).mode().first(),
        "constant": lambda c: pl.lit(cleaning.impute_value),
    }[cleaning.impute]
    # Interpolated ints are rounded back: a column keeps its schema type.
    filled = [_as_type(pl.col(c).fill_null(fill(c)), dtypes[c]).alias(c) for c in features]
    return frame.with_columns(filled)


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


def _nulls(frame: pl.DataFrame, columns: list[str]) -> dict[str, int]:
    return _count(frame, [pl.col(c).is_null().sum().alias(c) for c in columns])


def _count(frame: pl.DataFrame, expressions: list[pl.Expr]) -> dict[str, int]:
    if not expressions or frame.height == 0:
        return {}
    counts = frame.select(expressions).row(0, named=True)
    return {name: int(n) for name, n in counts.items() if n}
