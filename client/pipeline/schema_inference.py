"""Infer a site schema from a sample file: types, markers, ranges, roles.

Everything is a suggestion the operator reviews: in particular a min/max seen in
the sample is only a public range once the operator confirms it is public.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import polars as pl

from client.pipeline import numeric_guess
from client.pipeline.ingest import header_fields
from client.pipeline.roles import guess_roles, join_notes
from client.pipeline.validate import DECIMAL_COMMA
from common.errors import ConfigError, CsvLayoutError, DataError

SAMPLE_ROWS = 100_000
"""Rows read for the guess; a larger file is guessed from its first rows."""

DELIMITERS = (",", ";", "\t", "|")  # sniffed in this order; " " only as a last resort
CATEGORY_MAX_VALUES = 20
PARQUET_SUFFIXES = {".parquet", ".pq"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CSV_SUFFIXES = {".csv", ".tsv", ".txt", ".data"}

# Markers that mean "no value" wherever they appear (compared after stripping blanks).
TEXT_MARKERS = ("", "?", "NA", "N/A", "n/a", "na", "NaN", "nan", "NULL", "null", "None")
TEXT_MARKERS += ("none", "-", "--", ".", "#N/A", "missing")
# At most this many distinct unknown words in an otherwise numeric column are markers.
UNKNOWN_MARKERS_MAX = 3
NUMERIC_SHARE = 0.9
# Digits with separators: what a person reads as a number, parseable or not.
NUMBER_LIKE = r"^[+-]?[\d.,' ]*\d[\d.,' ]*$"

_TRUE_FALSE = {"true", "false", "yes", "no", "t", "f", "y", "n"}


# ---------------------------------------------------------------------------- inference


def infer_schema(
    sample: Path,
    *,
    header: bool | None = None,
    delimiter: str | None = None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """Guess the schema of ``sample``.

    Parameters
    ----------
    sample : a CSV (any of ``, ; tab |``), Parquet or JSON-lines file, or a folder
        (its first data file is the sample).
    header : whether a CSV's first row names the columns; None = detect (a first
        row with a number in it is data).
    delimiter : a CSV's delimiter; None = sniff it.
    names : column names, in file order; they name a headerless file's columns
        (else ``col_1`` ... ``col_n``) or replace a header's.

    Returns
    -------
    dict
        ``format``, ``header``, ``delimiter``, ``rows`` (rows read), ``missing`` (the
        markers seen in any column) and ``columns``: name -> ``type``, ``role``,
        ``min``/``max`` (numeric), ``values`` (categories, small int labels),
        ``missing`` (markers seen in that column), ``nulls``, ``distinct``, ``note``;
        ``cleaning``: settings the guess calls for (e.g. ``dedupe = "id"``).
    """
    path = _sample_file(Path(sample))
    kind = _format(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    if kind == "csv":
        frame, header, delimiter = _read_csv(path, header=header, delimiter=delimiter, names=names)
    else:
        frame = _read_typed_file(path, kind)
        header, delimiter = True, ","
        if names is not None:
            frame = frame.rename(dict(zip(frame.columns, _check_names(names, frame.width, path))))
    if frame.height == 0:
        raise DataError(f"{path}: no rows to learn from")

    columns = {name: _infer_column(frame.get_column(name)) for name in frame.columns}
    cleaning = guess_roles(columns, distinct_rows=frame.n_unique)
    seen = {m for spec in columns.values() for m in spec["missing"] if m in TEXT_MARKERS}
    return {
        "source": str(path),
        "format": kind,
        "header": header,
        "delimiter": delimiter,
        "rows": frame.height,
        "missing": [m for m in TEXT_MARKERS if m in seen],
        "columns": columns,
        "cleaning": cleaning,
    }


def _sample_file(path: Path) -> Path:
    if path.is_dir():
        known = CSV_SUFFIXES | PARQUET_SUFFIXES | JSON_SUFFIXES
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in known)
        if not files:
            raise DataError(f"{path}: folder holds no CSV, Parquet or JSON-lines file")
        return files[0]
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    return path


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    return "csv"


def _read_typed_file(path: Path, kind: str) -> pl.DataFrame:
    """A Parquet / JSON-lines file with every column as text, as the pipeline reads it."""
    try:
        if kind == "parquet":
            frame = pl.read_parquet(path, n_rows=SAMPLE_ROWS)
        else:
            frame = pl.read_ndjson(path, n_rows=SAMPLE_ROWS, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError, ValueError, UnicodeDecodeError) as error:
        what = "Parquet" if kind == "parquet" else "JSON lines"
        raise DataError(f"{path}: cannot read as {what} ({_first_line(error)})") from None
    return frame.select(_as_text(frame, name) for name in frame.columns)


def _as_text(frame: pl.DataFrame, name: str) -> pl.Expr:
    dtype = frame.schema[name]
    if dtype.is_nested() or dtype == pl.Object:
        return pl.col(name).map_elements(str, return_dtype=pl.String).alias(name)
    return pl.col(name).cast(pl.String).alias(name)


def _read_csv(
    path: Path, *, header: bool | None, delimiter: str | None, names: list[str] | None
) -> tuple[pl.DataFrame, bool, str]:
    head = _head_text(path)
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: file holds only blank lines")
    if delimiter is None:
        delimiter = _sniff_delimiter(lines)
    elif len(delimiter) != 1:
        raise ConfigError(f"delimiter must be one character, got {delimiter!r}")
    elif len(next(csv.reader(lines[:1], delimiter=delimiter))) == 1:
        sniffed = _sniff_delimiter(lines)
        if sniffed != delimiter and len(next(csv.reader(lines[:1], delimiter=sniffed))) > 1:
            raise CsvLayoutError(
                f"{path}: delimiter {delimiter!r} reads one column; the file parses with "
                f"delimiter {sniffed!r} (--delimiter {sniffed!r})"
            )
    if header is None:
        first = next(csv.reader([lines[0]], delimiter=delimiter))
        header = not any(_looks_numeric(field) for field in first)
    try:
        frame = pl.read_csv(
            path,
            has_header=header,
            separator=delimiter,
            infer_schema=False,
            empty_string_is_null=False,
            n_rows=SAMPLE_ROWS,
        )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: cannot read as CSV ({_first_line(error)})") from None
    if header and names is None:
        fields = [f.strip() for f in header_fields(lines[0], delimiter)]
        repeated = next((n for i, n in enumerate(fields) if n and n in fields[:i]), None)
        if repeated is not None:
            raise CsvLayoutError(
                f"{path}: column {repeated!r} is named twice in the header: rename one "
                "(or name the columns with --columns)"
            )
    if names is not None:
        new = _check_names(names, frame.width, path)
    elif not header:
        new = [f"col_{i}" for i in range(1, frame.width + 1)]
    else:
        new = [name.strip() or f"col_{i}" for i, name in enumerate(frame.columns, 1)]
    return frame.rename(dict(zip(frame.columns, new))), header, delimiter


def _head_text(path: Path, size: int = 1 << 16) -> str:
    with path.open("rb") as handle:
        data = handle.read(size)
    if len(data) == size and b"\n" in data:
        data = data[: data.rindex(b"\n")]  # never cut a character or a row in two
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (CSV files must be UTF-8)") from None


def _sniff_delimiter(lines: list[str]) -> str:
    """The candidate that splits the first lines into the same number (> 1) of fields.

    Candidates are ``, ; tab |``; a single space only when none of them splits.
    """
    best, best_width = ",", 1
    for candidate in DELIMITERS:
        widths = {len(row) for row in csv.reader(lines[:50], delimiter=candidate)}
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = candidate, width
    if best_width > 1:
        return best
    widths = {len(line.split(" ")) for line in lines[:50]}
    if len(widths) == 1 and widths.pop() > 1:
        return " "
    # Ragged lines: the candidate seen most often on the first line (the pipeline will say
    # which rows break it), else a one-column file.
    counts = {d: lines[0].count(d) for d in DELIMITERS}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def _looks_numeric(field: str) -> bool:
    try:
        return math.isfinite(float(field.strip()))
    except ValueError:
        return False


def _check_names(names: list[str], width: int, path: Path) -> list[str]:
    names = [n.strip() for n in names]
    if any(not n for n in names):
        raise ConfigError("column names must not be empty")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"column names repeat: {duplicates}")
    if len(names) != width:
        raise ConfigError(f"{path}: has {width} columns but {len(names)} names were given")
    return names


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _infer_column(raw: pl.Series) -> dict[str, Any]:
    """Type, markers, range or values of one text column."""
    text = raw.str.strip_chars()
    nulls = text.null_count()  # Parquet / JSON nulls: already missing, no marker
    present = text.drop_nulls()
    counts = dict(present.alias("value").value_counts(name="n").iter_rows())
    markers = [m for m in TEXT_MARKERS if m in counts]
    values = present.filter(~present.is_in(markers))

    # A decimal comma ('12,29') is a number, never a marker: read as prepare will with
    # decimal = ",".
    commas = values.str.contains(",", literal=True)
    if commas.any():
        commas = values.str.contains(DECIMAL_COMMA)
        numbers = values.str.replace(DECIMAL_COMMA, "${1}.${2}").cast(pl.Float64, strict=False)
    else:
        numbers = values.cast(pl.Float64, strict=False)
    parsed = numbers.is_not_null() & ~values.str.contains(r"^[+-]?0\d")  # '007' is a code
    unparsed_note = ""
    if values.len() and parsed.sum() < values.len() and parsed.mean() >= NUMERIC_SHARE:
        # A value written like a number ('1.234,5', '12,5,1') is never a marker: a real
        # value prepare cannot read, so its row goes to quarantine with the reason.
        numberlike = numbers.is_null() & values.str.contains(NUMBER_LIKE)
        unknown = values.filter(~parsed & ~numberlike).unique().to_list()
        if len(unknown) <= UNKNOWN_MARKERS_MAX:  # e.g. 'unknown', 'n.d.' in a number column
            markers += sorted(unknown)
            odd = values.filter(numberlike)
            if odd.len():
                unparsed_note = (
                    f"{odd.len()} values written like numbers do not parse (e.g. "
                    f"'{odd[0]}'): prepare quarantines their rows"
                )
            values, numbers = values.filter(parsed), numbers.filter(parsed)
            commas = commas.filter(parsed)
            parsed = parsed.filter(parsed)
    numeric = values.len() > 0 and numbers.null_count() == 0 and parsed.all()
    sentinel_note = ""
    decimal_note = (
        numeric_guess.decimal_note(values.filter(commas)) if numeric and commas.any() else ""
    )
    if numeric:
        sentinels = numeric_guess.sentinels(values, numbers)
        markers += sentinels
        sentinel_note = numeric_guess.sentinel_note(sentinels) if sentinels else ""
        keep = ~values.is_in(sentinels)
        values, numbers = values.filter(keep), numbers.filter(keep)

    spec: dict[str, Any] = {
        "type": "float",
        "role": "feature",
        "min": None,
        "max": None,
        "values": None,
        "missing": markers,
        "nulls": nulls + sum(counts.get(m, 0) for m in markers),
        "distinct": values.n_unique(),
        "unique": values.len() == raw.len() and values.n_unique() == values.len(),
        "note": join_notes(decimal_note, unparsed_note, sentinel_note),
    }
    if decimal_note:
        spec["decimal"] = ","
    if values.len() == 0:
        spec["note"] = "no values in the sample: check the type"
        return spec
    if numeric:
        finite = numbers.filter(numbers.is_finite())
        integral = finite.len() == numbers.len() and bool((finite == finite.round()).all())
        spec["type"] = "int" if integral else "float"
        written = values.filter(values.str.contains(r"[.,]"))
        if integral and written.len():
            spec["note"] = join_notes(spec["note"], f"ints written as floats ('{written[0]}')")
        numeric_guess.suggest_range(spec, finite)
        if integral and spec["distinct"] <= CATEGORY_MAX_VALUES:
            spec["values"] = [str(v) for v in sorted(finite.cast(pl.Int64).unique().to_list())]
        return spec
    lowered = values.str.to_lowercase()
    if lowered.is_in(list(_TRUE_FALSE)).all():
        spec["type"] = "bool"
        return spec
    if _all_datetimes(values):
        spec["type"] = "datetime"
        return spec
    distinct = spec["distinct"]
    if distinct <= CATEGORY_MAX_VALUES and distinct < 0.5 * values.len():
        spec["type"] = "category"
        spec["values"] = sorted(values.unique().to_list())
    else:
        spec["type"] = "text"
    return spec


def _all_datetimes(values: pl.Series) -> bool:
    """True when the pipeline's datetime parsing (format inferred) reads every value."""
    try:
        return values.str.to_datetime(strict=False).null_count() == 0
    except pl.exceptions.PolarsError:  # no format fits the first value
        return False
