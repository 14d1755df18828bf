"""Read a site's raw files exactly as written: every value as text, with provenance.

Raw files are only ever read. Each row keeps the file it came from and its line, so
a quarantined row can be found again in the source.
"""

from __future__ import annotations

import csv
import glob
from pathlib import Path

import polars as pl

from common.config import ColumnType, SchemaSection, SiteConfig
from common.errors import CsvLayoutError, DataError

SOURCE, LINE = "_source", "_line"
CSV_DELIMITERS = (",", ";", "\t", "|")
_READERS = {
    ".csv": "csv",
    ".txt": "csv",
    ".data": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
}


def check_header(path: Path, schema: SchemaSection) -> None:
    """Refuse a CSV whose header repeats a name or, split by the schema's delimiter, lacks
    schema columns that another delimiter finds (naming that delimiter)."""
    if _READERS.get(path.suffix.lower(), "csv") != "csv" or not schema.header:
        return
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            line = handle.readline()
    except (OSError, UnicodeDecodeError):
        return  # the reader says what is wrong with the file
    fields = header_fields(line, schema.delimiter)
    # Blank names (a header ending in delimiters) name no schema column: not a repeat.
    repeated = next((n for i, n in enumerate(fields) if n and n in fields[:i]), None)
    if repeated is not None:
        raise CsvLayoutError(
            f"{path}: column {repeated!r} is named twice in the header: rename one"
        )
    if all(c in fields for c in schema.columns):
        return
    for candidate in CSV_DELIMITERS:
        if candidate != schema.delimiter and all(
            c in header_fields(line, candidate) for c in schema.columns
        ):
            raise CsvLayoutError(
                f"{path}: the header split by delimiter {schema.delimiter!r} lacks schema "
                f"columns; the file parses with delimiter {candidate!r}: set [schema] "
                f"delimiter = {candidate!r}"
            )


def header_fields(line: str, delimiter: str) -> list[str]:
    """A CSV header line's names, as polars reads them (quotes removed, blanks kept)."""
    row = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
    return list(row)


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


def read_raw(config: SiteConfig) -> pl.DataFrame:
    """Every raw file as text columns (the schema's), plus ``_source`` and ``_line``."""
    return pl.concat([read_text(path, config.schema) for path in raw_files(config)])


def scan_typed(path: Path, schema: SchemaSection) -> pl.LazyFrame | None:
    """``path``'s schema columns, ints and floats typed by polars' CSV reader, the rest text.

    The reader parses numbers where they are read, so no column is held as text to be
    typed afterwards. It is strict: a value it cannot type fails the collect (a
    ``PolarsError``), and the caller then takes the text route, which quarantines it.
    None where only the text route is exact: a file that is not a CSV with a header,
    or a numeric column with missing markers of its own (the reader takes one list).
    """
    if _READERS.get(path.suffix.lower(), "csv") != "csv" or not schema.header:
        return None
    check_header(path, schema)
    numeric = {ColumnType.INT: pl.Int64, ColumnType.FLOAT: pl.Float64}
    # Decimal commas are read as text and typed by validate: the reader takes one decimal.
    types = {
        n: numeric.get(s.type, pl.String) if schema.decimal_of(n) == "." else pl.String
        for n, s in schema.columns.items()
    }
    if any(schema.columns[n].missing for n, t in types.items() if t != pl.String):
        return None
    # The reader numbers the rows (line 2 is the first after the header): an
    # ``int_range`` over the whole file would not stream.
    scan = pl.scan_csv(
        path,
        separator=schema.delimiter,
        infer_schema=False,
        schema_overrides=types,
        null_values=list(schema.missing) or None,
        row_index_name=LINE,
        row_index_offset=2,
    )
    return scan.select(
        *schema.columns, pl.lit(path.name).alias(SOURCE), pl.col(LINE).cast(pl.Int64)
    )


def scan_text(path: Path, schema: SchemaSection) -> pl.LazyFrame:
    """The CSV with a header ``path`` as ``read_text`` gives it, as a plan (it streams)."""
    scan = pl.scan_csv(
        path,
        separator=schema.delimiter,
        infer_schema=False,
        row_index_name=LINE,
        row_index_offset=2,
    )
    return scan.select(
        *(pl.col(c).cast(pl.String) for c in schema.columns),
        pl.lit(path.name).alias(SOURCE),
        pl.col(LINE).cast(pl.Int64),
    )


def read_text_lines(path: Path, schema: SchemaSection, lines: list[int]) -> pl.DataFrame:
    """The rows at ``lines`` of the CSV ``path`` as ``read_text`` gives them (a quarantine)."""
    return scan_text(path, schema).filter(pl.col(LINE).is_in(lines)).collect()


def read_text(path: Path, schema: SchemaSection) -> pl.DataFrame:
    kind = _READERS.get(path.suffix.lower(), "csv")
    check_header(path, schema)
    try:
        if kind == "parquet":
            raw = pl.read_parquet(path)
        elif kind == "ndjson":
            raw = pl.read_ndjson(path, infer_schema_length=None)
        else:
            raw = pl.read_csv(
                path,
                has_header=schema.header,
                new_columns=None if schema.header else list(schema.columns),
                separator=schema.delimiter,
                infer_schema=False,
            )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DataError(f"{path}: cannot read ({first_line})") from None
    if raw.height == 0:
        raise DataError(f"{path}: file has no rows")
    missing = [c for c in schema.columns if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: header lacks schema columns {missing}")
    first_data_line = 2 if kind == "csv" and schema.header else 1
    return raw.select(
        *(pl.col(c).cast(pl.String) for c in schema.columns),
        pl.lit(path.name).alias(SOURCE),
        (pl.int_range(pl.len(), dtype=pl.Int64) + first_data_line).alias(LINE),
    )
