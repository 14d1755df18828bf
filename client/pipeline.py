"""Ingest and clean a site's raw files with polars; raw files are only ever read.

``ingest`` types the raw rows by the site's schema (missing-value markers become
nulls); ``clean`` drops duplicates and rows without a label, imputes features and
clips them to their declared range. Both are lazy polars pipelines.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from common.config import ColumnType, Role, SchemaSection, SiteConfig
from common.errors import DataError

_POLARS_TYPES = {
    ColumnType.INT: pl.Int64,
    ColumnType.FLOAT: pl.Float64,
    ColumnType.BOOL: pl.Boolean,
    ColumnType.CATEGORY: pl.String,
    ColumnType.DATETIME: pl.Datetime,
    ColumnType.TEXT: pl.String,
}
_READERS = {".csv": "csv", ".txt": "csv", ".data": "csv", ".parquet": "parquet"}


@dataclass
class CleaningReport:
    """What cleaning did, in counts (never row values)."""

    rows_read: int = 0
    duplicates_dropped: int = 0
    unlabeled_dropped: int = 0
    incomplete_dropped: int = 0
    imputed: dict[str, int] = field(default_factory=dict)
    clipped: dict[str, int] = field(default_factory=dict)
    rows_clean: int = 0


def raw_files(config: SiteConfig) -> list[Path]:
    """The raw files the config points at: a file, a directory or a glob."""
    location = config.raw_location
    if location.is_dir():
        files = sorted(p for p in location.iterdir() if p.suffix.lower() in _READERS)
    elif location.exists():
        files = [location]
    else:
        files = sorted(Path(p) for p in glob.glob(str(location)))
    if not files:
        raise DataError(f"{location}: no raw data files found")
    return files


def ingest(config: SiteConfig) -> pl.DataFrame:
    """Read every raw file, typed by the schema, into one frame."""
    frames = [_read_typed(path, config.schema) for path in raw_files(config)]
    return pl.concat(frames, how="vertical")


def _read_typed(path: Path, schema: SchemaSection) -> pl.DataFrame:
    kind = _READERS.get(path.suffix.lower(), "csv")
    try:
        if kind == "parquet":
            raw = pl.read_parquet(path).cast(pl.String)
        else:
            raw = pl.read_csv(
                path,
                has_header=schema.header,
                new_columns=None if schema.header else list(schema.columns),
                separator=schema.delimiter,
                infer_schema=False,
            )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DataError(f"{path}: cannot read ({first_line})") from None
    if raw.height == 0:
        raise DataError(f"{path}: file has no rows")
    missing = [c for c in schema.columns if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: header lacks schema columns {missing}")
    return raw.select(_typed_column(name, spec, schema) for name, spec in schema.columns.items())


def _typed_column(name, spec, schema: SchemaSection) -> pl.Expr:
    markers = [*schema.missing, *spec.missing]
    text = pl.col(name).str.strip_chars()
    value = pl.when(text.is_in(markers)).then(None).otherwise(text)
    return _parse(value, spec.type).alias(name)


_TRUE, _FALSE = ["true", "yes", "1", "t", "y"], ["false", "no", "0", "f", "n"]


def _parse(text: pl.Expr, kind: ColumnType) -> pl.Expr:
    """Text to the schema's type; what does not parse becomes null."""
    if kind is ColumnType.BOOL:
        lowered = text.str.to_lowercase()
        return pl.when(lowered.is_in(_TRUE)).then(True).when(lowered.is_in(_FALSE)).then(False)
    if kind is ColumnType.DATETIME:
        return text.str.to_datetime(strict=False)
    typed = text.cast(_POLARS_TYPES[kind], strict=False)
    # 'NaN' parses as a float but means "not measured": make it a null like the rest.
    return typed.fill_nan(None) if kind is ColumnType.FLOAT else typed


def clean(frame: pl.DataFrame, config: SiteConfig) -> tuple[pl.DataFrame, CleaningReport]:
    """Dedupe, drop unlabeled rows, impute and clip features; report the counts."""
    schema, cleaning = config.schema, config.cleaning
    features = [n for n in schema.features if schema.columns[n].type in _NUMERIC]
    report = CleaningReport(rows_read=frame.height)

    if cleaning.dedupe:
        deduped = frame.unique(maintain_order=True)
        report.duplicates_dropped = frame.height - deduped.height
        frame = deduped
    labeled = frame.filter(pl.col(schema.label).is_not_null())
    report.unlabeled_dropped = frame.height - labeled.height
    frame = labeled

    report.imputed = _count(frame, [pl.col(c).is_null().sum().alias(c) for c in features])
    if cleaning.impute == "drop":
        kept = frame.drop_nulls(features)
        report.incomplete_dropped = frame.height - kept.height
        report.imputed = {}
        frame = kept
    else:
        frame = frame.with_columns(_imputed(c, cleaning) for c in features)

    bounded = [c for c in features if _has_range(schema, c)]
    if cleaning.outliers == "clip" and bounded:
        report.clipped = _count(frame, [_out_of_range(c, schema).sum().alias(c) for c in bounded])
        frame = frame.with_columns(
            pl.col(c).clip(schema.columns[c].min, schema.columns[c].max) for c in bounded
        )
    report.rows_clean = frame.height
    return frame, report


_NUMERIC = {ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL}


def _imputed(column: str, cleaning) -> pl.Expr:
    fill = {
        "median": pl.col(column).median(),
        "mean": pl.col(column).mean(),
        "constant": pl.lit(cleaning.impute_value),
    }[cleaning.impute]
    return pl.col(column).fill_null(fill)


def _has_range(schema: SchemaSection, column: str) -> bool:
    spec = schema.columns[column]
    return spec.min is not None or spec.max is not None


def _out_of_range(column: str, schema: SchemaSection) -> pl.Expr:
    spec = schema.columns[column]
    below = pl.col(column) < spec.min if spec.min is not None else pl.lit(False)
    above = pl.col(column) > spec.max if spec.max is not None else pl.lit(False)
    return below | above


def _count(frame: pl.DataFrame, expressions: list[pl.Expr]) -> dict[str, int]:
    if not expressions:
        return {}
    counts = frame.select(expressions).row(0, named=True)
    return {name: int(n) for name, n in counts.items() if n}


def feature_columns(config: SiteConfig) -> list[str]:
    """Columns that may become model inputs: role feature, never id or pii."""
    return [
        name
        for name, spec in config.schema.columns.items()
        if spec.role is Role.FEATURE and spec.type in _NUMERIC
    ]
