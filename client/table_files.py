"""How a store table's Parquet files are written: codecs, row groups, Delta statistics.

Archive-like tables (raw text, quarantine) are compact; the tables the pipeline and
training query are written for speed. ``SiteStore`` decides which and commits.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import polars as pl
from deltalake import ColumnProperties, CommitProperties, WriterProperties

from client.integrity import HashingFile

if TYPE_CHECKING:
    import pyarrow as pa

# Row ids are unique text: a dictionary of them never pays (the store's ROW_ID).
_UNIQUE_TEXT = "_row_id"

# The writer holds a whole row group in memory (default: a million rows); smaller
# groups bound what a write adds to the peak.
ROW_GROUP = 1 << 16
_ARCHIVE = WriterProperties(
    max_row_group_size=ROW_GROUP,
    compression="ZSTD",
    compression_level=1,
    # Raw text rarely repeats within a page: dictionary pages cost time for no gain
    # (1M-row raw table 1.27 s -> 1.00 s).
    default_column_properties=ColumnProperties(statistics_enabled="NONE", dictionary_enabled=False),
)


def _queried(schema: pl.Schema) -> WriterProperties:
    """Dictionary pages only for text columns: categories repeat, numbers and row ids
    rarely do, and building their dictionaries was half the cost of a write. No block
    compression: snappy took 40 % of a write's CPU to save a third of the bytes; ints
    are delta bit-packed instead (most of that third, for little CPU)."""
    text = [c for c, dtype in schema.items() if dtype == pl.String and c != _UNIQUE_TEXT]
    ints = [c for c, dtype in schema.items() if dtype.is_integer()]
    return WriterProperties(
        max_row_group_size=ROW_GROUP,
        compression="UNCOMPRESSED",
        default_column_properties=ColumnProperties(dictionary_enabled=False),
        column_properties={
            **{c: ColumnProperties(dictionary_enabled=True) for c in text},
            **{
                c: ColumnProperties(dictionary_enabled=False, encoding="DELTA_BINARY_PACKED")
                for c in ints
            },
        },
    )


def writer_properties(schema: pl.Schema, *, archive: bool) -> WriterProperties:
    """Delta writer settings of a table with ``schema``: compact for an ``archive`` table."""
    return _ARCHIVE if archive else _queried(schema)


def write_plan(
    path: str,
    plan: pl.LazyFrame,
    commit: CommitProperties,
    *,
    archive: bool,
    rows: pl.DataFrame | None = None,
) -> dict[str, str]:
    """``plan``'s rows streamed into a Parquet file of the table, then one Delta commit;
    the file's name (relative to the table) -> the sha256 of its bytes.

    Delta's own writer takes a stream of batches but not in order (delta-rs writes
    them in parallel); polars' sink keeps the order, and the commit adds the file
    with the statistics Delta's writer would record (numbers' ranges, null counts).
    An ``archive`` table (``SiteStore.write``'s) is zstd-compressed; others are not.
    The statistics come from ``rows``, the plan's rows where they are in memory (no
    pyarrow to import: 0.14 s of CPU), else from the file's metadata. The bytes are
    hashed as they are written, while polars encodes the next ones: hashing the file
    again afterwards was a third of a clean table's write.
    """
    from deltalake import Schema
    from deltalake.transaction import AddAction, create_table_with_add_actions

    name = f"part-00000-{uuid.uuid4()}-c000.parquet"
    file = Path(path) / name
    file.parent.mkdir(parents=True, exist_ok=True)
    # Queried tables uncompressed, as ``writer_properties``' files: zstd was a third of the CPU.
    with open(file, "wb") as handle:
        hashing = HashingFile(handle)
        sink = cast("BinaryIO", hashing)  # polars types a file object as IO[bytes]
        if archive:
            plan.sink_parquet(
                sink, compression="zstd", compression_level=1, row_group_size=ROW_GROUP
            )
        else:
            plan.sink_parquet(sink, compression="uncompressed", row_group_size=ROW_GROUP)
    stats, schema = _file_statistics(file) if rows is None else _statistics(rows)
    add = AddAction(name, file.stat().st_size, {}, int(file.stat().st_mtime * 1000), True, "")
    add.stats = json.dumps(stats)
    create_table_with_add_actions(
        path,
        Schema.from_arrow(schema),
        [add],
        mode="overwrite",
        commit_properties=commit,
    )
    return {name: hashing.digest.hexdigest()}


def plain(schema: pl.Schema) -> bool:
    """Numbers, text and booleans only: types polars and Delta name alike."""
    return all(d.is_numeric() or d in (pl.String, pl.Boolean) for d in schema.dtypes())


def _statistics(rows: pl.DataFrame) -> tuple[dict[str, object], pl.Schema | pa.Schema]:
    """The statistics Delta records of ``rows`` (numbers' ranges, null counts), and
    their schema."""
    numbers = [c for c, dtype in rows.schema.items() if dtype.is_numeric()]
    found = rows.select(
        *(pl.col(c).min().alias(f"min:{c}") for c in numbers),
        *(pl.col(c).max().alias(f"max:{c}") for c in numbers),
        *(pl.col(c).null_count().alias(f"null:{c}") for c in rows.columns),
    ).row(0, named=True)
    low = {c: found[f"min:{c}"] for c in numbers if found[f"min:{c}"] is not None}
    high = {c: found[f"max:{c}"] for c in numbers if found[f"max:{c}"] is not None}
    nulls = {c: found[f"null:{c}"] for c in rows.columns}
    stats = {"numRecords": rows.height, "minValues": low, "maxValues": high, "nullCount": nulls}
    return stats, rows.schema


def _file_statistics(file: Path) -> tuple[dict[str, object], pl.Schema | pa.Schema]:
    """``_statistics`` of a Parquet file, from its metadata, and its Arrow schema."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(file).metadata
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    low, high, nulls = {}, {}, {}
    arrow = pq.read_schema(file)
    for index, field in enumerate(arrow):
        columns = [g.column(index).statistics for g in groups]
        nulls[field.name] = sum(c.null_count for c in columns if c is not None)
        numeric = pa_numeric(field.type)
        if numeric and columns and all(c is not None and c.has_min_max for c in columns):
            low[field.name] = min(c.min for c in columns)
            high[field.name] = max(c.max for c in columns)
    stats = {"numRecords": meta.num_rows, "minValues": low, "maxValues": high, "nullCount": nulls}
    return stats, arrow


def pa_numeric(dtype: object) -> bool:
    """Whether an Arrow type is an int or float (whose file statistics Delta records)."""
    import pyarrow.types as t

    return bool(t.is_integer(dtype) or t.is_floating(dtype))
