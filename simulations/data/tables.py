"""A researcher's own tables as simulation datasets: ``csv:PATH`` and ``dir:PATH``.

Column types and roles come from the same inference ``fedlife-site init`` uses
(``client.pipeline.schema_inference``); the label is the column named by ``--label`` or the
one whose name says it is a label. The feature ranges are those of the whole table:
in a simulation the researcher holds all of it, like a dataset's documentation.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from client.pipeline.schema_inference import PARQUET_SUFFIXES, TEXT_MARKERS, infer_schema
from common.errors import ConfigError, DataError
from simulations.data.dataset import Dataset

SOURCE_FILE = "source_file"
TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".data", *PARQUET_SUFFIXES}
MAX_LABEL_CLASSES = 100


def load_table(path: str | Path, label: str = "") -> Dataset:
    """A CSV or Parquet file; ``label`` names its label column ('' = guess by name)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"dataset file {path} does not exist")
    schema = infer_schema(path)
    return _dataset(path.name, _read(path, schema), schema, label, natural=None)


def load_folder(path: str | Path, label: str = "") -> Dataset:
    """A folder of per-site tables (CSV or Parquet, same columns): a natural split by file.

    Each row keeps its file's name in ``source_file``, the column ``--partition
    natural`` splits by.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"dataset folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in TABLE_SUFFIXES)
    if len(files) < 2:
        raise ConfigError(f"dataset folder {folder} needs >= 2 CSV/Parquet files, one per site")
    schema = infer_schema(files[0])
    frames = [_read(f, schema).with_columns(pl.lit(f.stem).alias(SOURCE_FILE)) for f in files]
    try:
        frame = pl.concat(frames, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as error:
        raise DataError(f"{folder}: files do not share their columns ({error})") from None
    return _dataset(folder.name, frame, schema, label, natural=SOURCE_FILE)


def _read(path: Path, schema: dict) -> pl.DataFrame:
    try:
        if path.suffix in PARQUET_SUFFIXES:
            return pl.read_parquet(path)
        frame = pl.read_csv(
            path,
            has_header=schema["header"],
            separator=schema["delimiter"],
            null_values=list(TEXT_MARKERS),
            infer_schema_length=None,
        )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DataError(f"{path}: cannot read ({first})") from None
    # Columns init reads with decimal = "," ('12,29') are numbers here too, not text.
    commas = [
        c
        for c, spec in schema["columns"].items()
        if spec.get("decimal") == "," and frame.schema.get(c) == pl.String
    ]
    return frame.with_columns(
        pl.col(c).str.replace(",", ".", literal=True).cast(pl.Float64, strict=False) for c in commas
    )


def _dataset(name: str, frame: pl.DataFrame, schema: dict, label: str, natural) -> Dataset:
    columns = schema["columns"]
    label = label or _guessed_label(columns, name)
    if label not in frame.columns:
        raise ConfigError(f"{name}: no label column '{label}' (columns: {frame.columns})")
    frame = frame.filter(pl.col(label).is_not_null())
    if frame[label].n_unique() > MAX_LABEL_CLASSES:
        raise ConfigError(f"{name}: label '{label}' has > {MAX_LABEL_CLASSES} values")
    ranges, categories = {}, {}
    for column, spec in columns.items():
        if column == label or column not in frame.columns or spec["role"] != "feature":
            continue
        if spec["type"] in ("int", "float", "bool") and frame[column].dtype.is_numeric():
            low, high = frame[column].min(), frame[column].max()
            if low is not None and low < high:
                ranges[column] = (float(low), float(high))
        elif spec["type"] == "category":
            categories[column] = sorted(frame[column].drop_nulls().cast(pl.String).unique())
    frame = frame.with_columns(pl.col(c).cast(pl.Float64) for c in ranges)
    return Dataset(name, frame, label, ranges, categories=categories, natural=natural)


def _guessed_label(columns: dict, name: str) -> str:
    """The column whose name says 'label'; a last-column fallback is no label."""
    for column, spec in columns.items():
        guessed = "label guessed" in spec["note"] or "no plausible label" in spec["note"]
        if spec["role"] == "label" and not guessed:
            return column
    raise ConfigError(f"{name}: no label column found by name; name it with --label")
