"""Type raw text by the schema and split rows into valid ones and a quarantine.

A row is quarantined, with its reason, when a value does not parse as its column's
type, is not among the column's allowed values, or a required column is missing.
A column where most values do not parse is a schema mismatch, not dirty rows: that
is an error naming the file and the column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from client.pipeline.ingest import LINE, SOURCE, read_text_lines, scan_typed
from common.config import ColumnSpec, ColumnType, SchemaSection
from common.errors import DataError

REASON = "_reason"
_TRUE, _FALSE = ["true", "yes", "1", "t", "y"], ["false", "no", "0", "f", "n"]
_POLARS_TYPES = {
    ColumnType.INT: pl.Int64,
    ColumnType.FLOAT: pl.Float64,
    ColumnType.CATEGORY: pl.String,
    ColumnType.TEXT: pl.String,
}
_NUMERIC = (ColumnType.INT, ColumnType.FLOAT)
# A number written with a decimal comma ('12,29', '-0,5'); groups: integer part, fraction.
DECIMAL_COMMA = r"^([+-]?\d*),(\d+)$"
# Above this share of unparseable values a column is mistyped, not dirty.
MISTYPED_SHARE = 0.5


@dataclass(frozen=True)
class Validated:
    """Typed valid rows, quarantined rows (as text, with reasons), reason counts."""

    valid: pl.DataFrame
    quarantine: pl.DataFrame
    rejected: dict[str, int]


def validate(
    text: pl.DataFrame, schema: SchemaSection, *, reject_out_of_range: bool = False
) -> Validated:
    """Type ``text`` by ``schema``; quarantine the rows that break it.

    With ``reject_out_of_range`` a value outside its column's declared range is a
    reason too (the ``outliers = "reject"`` policy). Each column is parsed once:
    ``<name>`` keeps the text (markers blanked) and a shadow column the typed value.
    """
    checked = _checked(text.lazy(), schema, reject_out_of_range=reject_out_of_range, typed=set())
    # Row-aligned with ``text`` (typing keeps order and height): no join needed.
    quarantine = text.with_columns(checked.get_column(REASON)).filter(pl.col(REASON).is_not_null())
    return _split(checked, quarantine, schema)


def validate_files(
    files: list[Path], schema: SchemaSection, *, reject_out_of_range: bool = False
) -> Validated | None:
    """``validate`` of the files' text, with their numbers typed as they are read.

    The same valid rows, quarantine and reasons as ``validate(read_raw(...))``, without
    holding every value as text: ints and floats come typed from the CSV reader
    (``scan_typed``), and only the quarantined rows are read again as text. None where
    that is not exact (a file the reader cannot take, a number it cannot type, a file
    without rows or without a schema column): the caller then takes the text route.

    Parameters
    ----------
    files : the raw files, in reading order.
    schema : the site's schema.
    reject_out_of_range : as for ``validate``.
    """
    scans = [scan_typed(path, schema) for path in files]
    if any(scan is None for scan in scans):
        return None
    try:
        checked = _checked(
            pl.concat(scans),
            schema,
            reject_out_of_range=reject_out_of_range,
            typed=typed_as_read(schema),
        )
    except pl.exceptions.PolarsError:
        return None  # a value the reader cannot type: the text route quarantines it
    if checked.get_column(SOURCE).n_unique() < len(files):
        return None  # a file without rows: the text route names it
    bad = checked.filter(pl.col(REASON).is_not_null()).select(SOURCE, LINE, REASON)
    quarantine = quarantined_text(files, schema, bad)
    return _split(checked, quarantine, schema)


def typed_as_read(schema: SchemaSection) -> set[str]:
    """The columns ``scan_typed`` types as it reads: ints and floats with a decimal point."""
    return {
        n for n, s in schema.columns.items() if s.type in _NUMERIC and schema.decimal_of(n) == "."
    }


def quarantined_text(files: list[Path], schema: SchemaSection, bad: pl.DataFrame) -> pl.DataFrame:
    """The quarantine: the ``bad`` rows (``_source``, ``_line``, ``_reason``) of ``files``
    read again as text, in ``bad``'s order."""
    text = [
        read_text_lines(path, schema, lines)
        for path in files
        if (lines := bad.filter(pl.col(SOURCE) == path.name).get_column(LINE).to_list())
    ]
    if text:
        return pl.concat(text).join(bad, on=[SOURCE, LINE], how="inner", maintain_order="right")
    return pl.DataFrame(
        schema={
            **{n: pl.String for n in schema.columns},
            SOURCE: pl.String,
            LINE: pl.Int64,
            REASON: pl.String,
        },
    )


def rejected_counts(reasons: pl.Series) -> dict[str, int]:
    """How many rows each reason quarantined (a row may have several)."""
    return dict(Counter(r for line in reasons.to_list() for r in line.split("; ")))


def _checked(
    frame: pl.LazyFrame, schema: SchemaSection, *, reject_out_of_range: bool, typed: set[str]
) -> pl.DataFrame:
    """``frame`` with each column's value and typed shadow and the rows' reasons; refuses
    mistyped columns. ``typed`` columns come typed already (markers still to blank)."""
    checked = checked_plan(
        frame, schema, reject_out_of_range=reject_out_of_range, typed=typed
    ).collect()
    _refuse_mistyped_columns(checked, schema, typed)
    return checked


def checked_plan(
    frame: pl.LazyFrame, schema: SchemaSection, *, reject_out_of_range: bool, typed: set[str]
) -> pl.LazyFrame:
    """``frame``'s plan with each column's value and typed shadow and the rows' reasons.

    Parameters
    ----------
    frame : the rows, ``schema``'s columns (as text, or typed where in ``typed``).
    schema : the site's schema.
    reject_out_of_range : as for ``validate``.
    typed : the columns that come typed already (markers still to blank).
    """
    columns = schema.columns
    cleared = frame.with_columns(
        (_blank_typed if n in typed else _blank_missing)(n, s, schema) for n, s in columns.items()
    )
    parsed = cleared.with_columns(
        (pl.col(n) if n in typed else _parse(pl.col(n), s, schema.decimal_of(n))).alias(_typed(n))
        for n, s in columns.items()
    )
    problems = [
        _problem(n, s, reject_out_of_range=reject_out_of_range, typed=n in typed)
        for n, s in columns.items()
    ]
    problems = [p for p in problems if p is not None]
    if problems:
        reason = pl.concat_str(problems, separator="; ", ignore_nulls=True)
        reason = pl.when(reason == "").then(None).otherwise(reason)
    else:  # nothing can break a row
        reason = pl.lit(None, dtype=pl.String)
    return parsed.with_columns(reason.alias(REASON))


def _split(checked: pl.DataFrame, quarantine: pl.DataFrame, schema: SchemaSection) -> Validated:
    if quarantine.height:
        checked = checked.filter(pl.col(REASON).is_null())
    valid = checked.select(*finished(schema), SOURCE, LINE)
    return Validated(valid, quarantine, rejected_counts(quarantine.get_column(REASON)))


def finished(schema: SchemaSection) -> list[pl.Expr]:
    """Each schema column's final typed value, from a checked plan's shadow columns."""
    return [_finished(n, s) for n, s in schema.columns.items()]


def _blank_typed(name: str, spec: ColumnSpec, schema: SchemaSection) -> pl.Expr:
    """A number equal to a numeric marker is missing ('-9' is also '-9.0')."""
    numeric_markers = _numbers([*schema.missing, *spec.missing])
    if not numeric_markers:
        return pl.col(name)
    value = pl.col(name)
    missing = value.cast(pl.Float64).is_in(numeric_markers)
    return pl.when(missing).then(None).otherwise(value).alias(name)


def _typed(name: str) -> str:
    return f"__typed__{name}"


def _finished(name: str, spec: ColumnSpec) -> pl.Expr:
    typed = pl.col(_typed(name))
    # 'NaN' parses as a float but means "not measured": make it a null like the rest.
    return (typed.fill_nan(None) if spec.type is ColumnType.FLOAT else typed).alias(name)


def _blank_missing(name: str, spec: ColumnSpec, schema: SchemaSection) -> pl.Expr:
    text = pl.col(name).str.strip_chars()
    markers = [*schema.missing, *spec.missing]
    missing = text.is_in(markers)
    numeric_markers = _numbers(markers)
    if spec.type in (ColumnType.INT, ColumnType.FLOAT) and numeric_markers:
        # A marker '0' also means '0.0' and '-9' means '-9.0' in a numeric column.
        missing = missing | text.cast(pl.Float64, strict=False).is_in(numeric_markers)
    return pl.when(missing).then(None).otherwise(text).alias(name)


def _numbers(markers: list[str]) -> list[float]:
    numbers = []
    for marker in markers:
        try:
            numbers.append(float(marker))
        except ValueError:
            continue
    return [n for n in numbers if n == n]  # 'nan' parses, but is no marker value


def _parse(text: pl.Expr, spec: ColumnSpec, decimal: str = ".") -> pl.Expr:
    """Text to the schema's type (numbers with ``decimal``); what does not parse is null."""
    kind = spec.type
    if kind in _NUMERIC and decimal == ",":
        text = text.str.replace(DECIMAL_COMMA, "${1}.${2}")
    if kind is ColumnType.BOOL:
        lowered = text.str.to_lowercase()
        return pl.when(lowered.is_in(_TRUE)).then(True).when(lowered.is_in(_FALSE)).then(False)
    if kind is ColumnType.DATETIME:
        return text.str.to_datetime(strict=False)
    if kind is ColumnType.CATEGORY:
        # A code written '4.0' is the code '4' (exported data often floats its ints);
        # '007' stays '007'.
        return text.str.replace(r"^(-?\d+)\.0+$", "${1}")
    if kind is ColumnType.INT:
        # '63.0' is an int written as a float (common in exported data); '63.5' is not.
        # Plain digits parse as Int64 directly, so ids beyond 2**53 stay exact.
        number = text.cast(pl.Float64, strict=False)
        written_as_float = pl.when(number == number.round()).then(number)
        return pl.coalesce(
            text.cast(pl.Int64, strict=False), written_as_float.cast(pl.Int64, strict=False)
        )
    return text.cast(_POLARS_TYPES[kind], strict=False)


def _problem(
    name: str, spec: ColumnSpec, *, reject_out_of_range: bool, typed: bool = False
) -> pl.Expr | None:
    """A reason string for the rows where column ``name`` breaks the schema, else null.

    None when nothing can break it (a ``typed`` column, typed as read, cannot fail to
    parse; without ranges to reject, allowed values or ``required`` that is all).
    """
    value, parsed = pl.col(name), pl.col(_typed(name))
    present = value.is_not_null()
    clauses = [] if typed else [(present & parsed.is_null(), f"{name}: not {spec.type.value}")]
    if reject_out_of_range and spec.type in (ColumnType.INT, ColumnType.FLOAT):
        number = parsed.cast(pl.Float64)
        low = number < spec.min if spec.min is not None else pl.lit(False)
        high = number > spec.max if spec.max is not None else pl.lit(False)
        clauses.append((low | high, f"{name}: out of range"))
    if spec.values is not None:
        allowed = [str(v) for v in spec.values]
        # '1.0' counts as '1' in an int or category column.
        numeric_code = spec.type in (ColumnType.INT, ColumnType.CATEGORY)
        as_text = parsed.cast(pl.String) if numeric_code else value
        clauses.append((present & ~as_text.is_in(allowed), f"{name}: value not allowed"))
    if spec.required:
        clauses.append((~present, f"{name}: missing"))
    if not clauses:
        return None
    (condition, message), *rest = clauses
    reason = pl.when(condition).then(pl.lit(message))
    for condition, message in rest:
        reason = reason.when(condition).then(pl.lit(message))
    return reason.otherwise(None)


def _refuse_mistyped_columns(
    checked: pl.DataFrame, schema: SchemaSection, typed: set[str] = frozenset()
) -> None:
    """A column where most present values do not parse is a schema mismatch."""
    unparsed = (ColumnType.TEXT, ColumnType.CATEGORY)
    parsed = [n for n, s in schema.columns.items() if s.type not in unparsed and n not in typed]
    if not parsed or checked.height == 0:
        return
    counts = checked.select(
        *(pl.col(n).is_not_null().sum().alias(f"present:{n}") for n in parsed),
        *(_unparsed(n).sum().alias(f"failed:{n}") for n in parsed),
    ).row(0, named=True)
    for name in parsed:
        present, failed = counts[f"present:{name}"], counts[f"failed:{name}"]
        if present and failed / present > MISTYPED_SHARE:
            example = checked.filter(_unparsed(name)).row(0, named=True)
            spec = schema.columns[name]
            raise DataError(
                f"{example[SOURCE]}: column '{name}' should be {spec.type.value} but "
                f"{failed} of {present} values are not (line {example[LINE]}: "
                f"'{example[name]}')"
            )


def _unparsed(name: str) -> pl.Expr:
    return pl.col(name).is_not_null() & pl.col(_typed(name)).is_null()
